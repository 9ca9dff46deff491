package proxy

import (
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// catalog is the set of databases a Server lets clients into. It is never changed once
// stored: SetDatabases stores a new one, and a handshake reads whichever is current.
type catalog struct {
	pg       map[string]Database // the PostgreSQL ones, by name
	my       []Database          // the MySQL ones, in configuration order
	myByName map[string]Database
}

// newCatalog puts the defaults of Database in place and indexes dbs by protocol and name.
func (s *Server) newCatalog(dbs []Database) *catalog {
	c := &catalog{pg: make(map[string]Database), myByName: make(map[string]Database)}
	for _, d := range dbs {
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
		if d.Protocol == ProtocolMySQL {
			c.my = append(c.my, d)
			c.myByName[d.Name] = d
			continue
		}
		c.pg[d.Name] = d
	}
	return c
}

// SetDatabases replaces the databases clients may connect to, as a configuration reload
// does: new clients see the new list, credentials and caching policies at once; sessions
// already open keep the settings they started with. A database no longer listed refuses new
// clients; end its open sessions with DrainDatabase.
func (s *Server) SetDatabases(dbs []Database) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	s.dbs.Store(s.newCatalog(dbs))
}
