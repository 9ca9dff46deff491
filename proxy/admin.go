package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Console serves the admin console: a client asking for one of ConsoleDatabases that is not a
// configured database is handed to it after the edge authenticated it (package admin).
type Console interface {
	// Credentials says how user logs into the console: with password, or (trust) without one;
	// ok is false for a user that may not.
	Credentials(user string) (password string, trust, ok bool)
	// ServePG serves one PostgreSQL console client, authenticated as user, until it leaves or
	// ctx ends. r reads nc; nothing has been answered after authentication yet.
	ServePG(ctx context.Context, r *pgwire.Reader, w io.Writer, user string, params map[string]string)
	// ServeMySQL serves one MySQL console client, authenticated as user, after its
	// handshake's OK; caps and ext are the capabilities and MariaDB's extended ones it
	// negotiated.
	ServeMySQL(ctx context.Context, r *mysqlwire.Reader, w io.Writer, user string, caps, ext uint32)
}

// ConsoleDatabases are the virtual database names of the admin console: Slipstream's own and
// PgBouncer's, so that tools written for PgBouncer's console work unchanged.
var ConsoleDatabases = []string{"slipstream", "pgbouncer"}

// wantsMySQLConsole reports whether a MySQL client asking for database name gets the
// console: the same names, on mysql_listen, unless a MySQL database has the name.
func (s *Server) wantsMySQLConsole(name string) bool {
	if s.cfg.Console == nil || !slices.Contains(ConsoleDatabases, name) {
		return false
	}
	_, configured := s.dbs.Load().myByName[name]
	return !configured
}

// mysqlConsoleAccount is what a MySQL console client must prove, as its PostgreSQL
// counterpart (serveConsole): an unknown user faces a password nobody knows.
func (s *Server) mysqlConsoleAccount(user string) mysqlwire.Account {
	password, trust, ok := s.cfg.Console.Credentials(user)
	if !ok {
		var b [16]byte
		rand.Read(b[:])
		password, trust = hex.EncodeToString(b[:]), false
	}
	return mysqlwire.Account{User: user, Password: password, Plugin: mysqlwire.NativePassword, Trust: trust}
}

// serveMySQLConsole finishes a MySQL console client's handshake and hands it to the console.
func (s *Server) serveMySQLConsole(ctx context.Context, conn *mysqlwire.Conn) {
	conn.Net.SetDeadline(time.Time{})
	if err := conn.Finish(mysql.SERVER_STATUS_AUTOCOMMIT); err != nil {
		return
	}
	s.cfg.Console.ServeMySQL(ctx, conn.Reader, conn.Net, conn.Response.User, conn.Capabilities, conn.ExtCapabilities)
}

// wantsConsole reports whether a client asking for database name gets the console.
func (s *Server) wantsConsole(name string) bool {
	if s.cfg.Console == nil || !slices.Contains(ConsoleDatabases, name) {
		return false
	}
	_, configured := s.dbs.Load().pg[name]
	return !configured
}

// serveConsole authenticates a console client and serves it; it returns errHandled when the
// console is done with the client, or the error that refused it.
func (s *Server) serveConsole(ctx context.Context, st *startup) error {
	user := st.params["user"]
	password, trust, ok := s.cfg.Console.Credentials(user)
	if !ok {
		// As for a wrong user of a database: challenge with a password nobody knows.
		var b [16]byte
		rand.Read(b[:])
		password, trust = hex.EncodeToString(b[:]), false
	}
	if !trust {
		if err := pgwire.Authenticate(st.nc, st.r, pgwire.AuthSCRAM, user, password, st.tls); err != nil {
			return err
		}
	}
	st.nc.SetDeadline(time.Time{})
	s.cfg.Console.ServePG(ctx, st.r, st.nc, user, st.params)
	return errHandled
}

// adminState is what the console changes in the edge: databases that take no new clients.
type adminState struct {
	mu       sync.Mutex
	disabled map[string]bool
}

// Disable makes the edge refuse new clients of db (DISABLE); Enable lets them in again.
func (s *Server) Disable(db string, off bool) {
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	if s.admin.disabled == nil {
		s.admin.disabled = make(map[string]bool)
	}
	if off {
		s.admin.disabled[db] = true
	} else {
		delete(s.admin.disabled, db)
	}
}

// Disabled reports whether db refuses new clients.
func (s *Server) Disabled(db string) bool {
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	return s.admin.disabled[db]
}

// Databases returns the databases the edge serves, PostgreSQL's and MySQL's.
func (s *Server) Databases() []Database { return slices.Clone(s.cfg.Databases) }

// Clients returns the client sessions open now.
func (s *Server) Clients() []ClientInfo {
	var out []ClientInfo
	s.keys.mu.Lock()
	for key, sess := range s.keys.m {
		ci := ClientInfo{Protocol: ProtocolPostgres, Database: sess.db, User: sess.params["user"],
			ApplicationName: sess.params["application_name"], Addr: sess.nc.RemoteAddr(), LocalAddr: sess.nc.LocalAddr()}
		if oc, ok := sess.nc.(*observedConn); ok {
			ci = oc.snapshot()
		}
		ci.ID = key.PID
		out = append(out, ci)
	}
	s.keys.mu.Unlock()
	s.myConns.mu.Lock()
	for id, sess := range s.myConns.m {
		if !sess.ready.Load() {
			continue
		}
		db, user, _ := sess.identity()
		out = append(out, ClientInfo{ID: id, Protocol: ProtocolMySQL, Database: db, User: user,
			Addr: sess.nc.RemoteAddr(), LocalAddr: sess.nc.LocalAddr(), Busy: sess.busy.Load()})
	}
	s.myConns.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientInfo) int { return a.ConnectTime.Compare(b.ConnectTime) })
	return out
}

// KillClients ends the sessions of db ("" : all databases) at once, as PgBouncer's KILL
// does, and returns how many it ended.
func (s *Server) KillClients(db string) int {
	return s.killWhere(func(sessDB string, _ uint32) bool { return db == "" || sessDB == db })
}

// KillClient ends the session with id (ClientInfo.ID) and reports whether there was one.
func (s *Server) KillClient(id uint32) bool {
	return s.killWhere(func(_ string, sid uint32) bool { return sid == id }) > 0
}

func (s *Server) killWhere(match func(db string, id uint32) bool) int {
	var pg []*session
	s.keys.mu.Lock()
	for key, sess := range s.keys.m {
		if match(sess.db, key.PID) {
			pg = append(pg, sess)
		}
	}
	s.keys.mu.Unlock()
	var my []*mysqlSession
	s.myConns.mu.Lock()
	for id, sess := range s.myConns.m {
		if db, _, _ := sess.identity(); sess.ready.Load() && match(db, id) {
			my = append(my, sess)
		}
	}
	s.myConns.mu.Unlock()
	for _, sess := range pg {
		sess.end(pgwire.Fatal(pgwire.AdminShutdown, "terminating connection due to administrator command"))
	}
	for _, sess := range my {
		sess.end(mysqlwire.Errorf(mysqlwire.ErServerShutdown), true)
	}
	return len(pg) + len(my)
}
