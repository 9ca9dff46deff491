package proxy

import (
	"errors"
	"slices"
)

// Databases added and removed while the edge runs: D1 databases and KV namespaces created,
// renamed and deleted through their REST APIs are served at once, without a restart. They
// change the catalog the way a configuration reload does (SetDatabases): a new one is stored
// whole, and a handshake reads whichever is current.

// errDatabaseExists refuses a database whose name and protocol are served already.
var errDatabaseExists = errors.New("a database with that name is served already")

// AddDatabase lets clients into d from now on, as if it were in Config.Databases. It fails when
// a database of d's name is served over d's protocol already; the error's text may be shown to
// whoever asked for d.
func (s *Server) AddDatabase(d Database) error {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	cur := s.dbs.Load()
	_, taken := cur.pg[d.Name]
	if d.Protocol == ProtocolMySQL {
		_, taken = cur.myByName[d.Name]
	}
	if taken {
		return errDatabaseExists
	}
	s.dbs.Store(s.newCatalog(append(cur.list(), d)))
	return nil
}

// RemoveDatabase stops letting clients into name, over both protocols. Sessions already in it
// keep their pool-side session until it ends.
func (s *Server) RemoveDatabase(name string) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	dbs := slices.DeleteFunc(s.dbs.Load().list(), func(d Database) bool { return d.Name == name })
	s.dbs.Store(s.newCatalog(dbs))
}

// list returns the catalog's databases, the MySQL ones in their order after the PostgreSQL ones.
func (c *catalog) list() []Database {
	out := make([]Database, 0, len(c.pg)+len(c.my))
	for _, d := range c.pg {
		out = append(out, d)
	}
	return append(out, c.my...)
}
