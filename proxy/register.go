package proxy

import (
	"errors"
	"slices"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Databases added and removed while the edge runs: D1 databases and KV namespaces created,
// renamed and deleted through their REST APIs are served at once, without a restart.

// errDatabaseExists refuses a database whose name and protocol are served already.
var errDatabaseExists = errors.New("a database with that name is served already")

// AddDatabase lets clients into d from now on, as if it were in Config.Databases. It fails when
// a database of d's name is served over d's protocol already; the error's text may be shown to
// whoever asked for d.
func (s *Server) AddDatabase(d Database) error {
	d = s.withDefaults(d)
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	_, taken := s.dbs[d.Name]
	if d.Protocol == ProtocolMySQL {
		_, taken = s.myByName[d.Name]
	}
	if taken {
		return errDatabaseExists
	}
	s.addDatabaseLocked(d)
	return nil
}

// RemoveDatabase stops letting clients into name, over both protocols. Sessions already in it
// keep their pool-side session until it ends.
func (s *Server) RemoveDatabase(name string) {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	delete(s.dbs, name)
	if _, ok := s.myByName[name]; ok {
		delete(s.myByName, name)
		s.myDBs = slices.DeleteFunc(slices.Clone(s.myDBs), func(d Database) bool { return d.Name == name })
	}
}

// withDefaults fills d's zero fields as Config documents them.
func (s *Server) withDefaults(d Database) Database {
	if d.Auth == "" {
		d.Auth = pgwire.AuthSCRAM
	}
	if d.Caching.MaxAge <= 0 {
		d.Caching.MaxAge = 60 * time.Second
	}
	if d.Caching.MaxResultBytes <= 0 {
		d.Caching.MaxResultBytes = 50 << 20
	}
	if d.Auth == pgwire.AuthSCRAM && d.Protocol != ProtocolMySQL {
		if err := pgwire.PrepareSCRAM(d.User, d.Password); err != nil {
			s.log.Warn("deriving SCRAM keys ahead of logins failed; each login derives them", "db", d.Name)
		}
	}
	return d
}

// addDatabase serves d, replacing a database of its name and protocol.
func (s *Server) addDatabase(d Database) {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.addDatabaseLocked(d)
}

func (s *Server) addDatabaseLocked(d Database) {
	if d.Protocol != ProtocolMySQL {
		s.dbs[d.Name] = d
		return
	}
	s.myDBs = append(slices.DeleteFunc(slices.Clone(s.myDBs), func(o Database) bool { return o.Name == d.Name }), d)
	s.myByName[d.Name] = d
}

// pgDatabase is the PostgreSQL database clients call name.
func (s *Server) pgDatabase(name string) (Database, bool) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	d, ok := s.dbs[name]
	return d, ok
}

// mysqlDatabaseNamed is the MySQL database clients call name.
func (s *Server) mysqlDatabaseNamed(name string) (Database, bool) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	d, ok := s.myByName[name]
	return d, ok
}

// mysqlDatabases are the MySQL databases in the order they were added; the slice is not
// changed afterwards, so it may be read without the lock.
func (s *Server) mysqlDatabases() []Database {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.myDBs
}
