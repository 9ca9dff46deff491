package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// ServeMySQL accepts MySQL clients on ln until ctx ends, then stops accepting, ends every
// session and waits for them. It serves the databases whose Protocol is ProtocolMySQL.
//
//	client                         edge (serveMySQLConn)              link.Stream
//	 │<──────── Handshake v10 ────────│ from the origin profile
//	 │ [SSLRequest, TLS] Response ───>│ mysqlwire.Accept: database known? else 1049
//	 │<── [AuthSwitch, AuthMoreData]  │ password checked here: 1045
//	 │<──────────────────────── OK    │ Open (no origin I/O)
//	 │ COM_PING ─────────────────────>│ OK, from the edge
//	 │ KILL QUERY <edge id> ─────────>│ Cancel on that session's stream
//	 │ COM_QUERY, COM_STMT_*, … ─────>│ Send ───────────────────────────>│
//	 │<──────────────────── answers   │ Recv while Pending <─────────────│
//	 │ COM_QUIT ─────────────────────>│ Send, Close ────────────────────>│
func (s *Server) ServeMySQL(ctx context.Context, ln net.Listener) error {
	return s.accept(ctx, ln, s.serveMySQLConn)
}

// mysqlDefaults greet a client when no origin profile is known yet.
const (
	mysqlDefaultVersion   = "8.0.0-slipstream"
	mysqlDefaultCollation = 45 // utf8mb4_general_ci
	// mysqlGreetingWait bounds the wait for the profile the greeting is made of.
	mysqlGreetingWait = 2 * time.Second
)

// forwardedCommands are the commands the edge passes to the pool side. Others (replication,
// COM_SHUTDOWN, COM_PROCESS_INFO, ...) get ER_UNKNOWN_COM_ERROR, and the session goes on.
var forwardedCommands = [256]bool{
	mysql.COM_INIT_DB: true, mysql.COM_QUERY: true, mysql.COM_FIELD_LIST: true,
	mysql.COM_STATISTICS: true, mysql.COM_STMT_PREPARE: true, mysql.COM_STMT_EXECUTE: true,
	mysql.COM_STMT_SEND_LONG_DATA: true, mysql.COM_STMT_CLOSE: true, mysql.COM_STMT_RESET: true,
	mysql.COM_SET_OPTION: true, mysql.COM_STMT_FETCH: true, mysql.COM_RESET_CONNECTION: true,
}

// mysqlSession is one MySQL client connection after its connection phase.
type mysqlSession struct {
	s      *Server
	log    *slog.Logger
	id     uint32 // the connection id the edge handed out
	db     Database
	user   string
	nc     net.Conn
	r      *mysqlwire.Reader
	stream link.Stream
	params map[string]string // the stream's startup parameters, to open it again on another pool
	caps   uint32            // negotiated with the client
	ext    uint32            // MariaDB extended capabilities negotiated with the client
	// sslStatus says the command in flight is SHOW STATUS, whose Ssl_version and Ssl_cipher
	// rows the edge rewrites (mysqlssl.go) into sslBuf.
	sslStatus bool
	sslBuf    []byte

	status uint16 // server status flags of the last answer, for COM_PING's OK
	seq    byte   // sequence id of the next packet to the client in the current command
	infile bool   // the origin asked for a LOAD DATA LOCAL file: the client's packets are data

	conn     *mysqlwire.Conn
	cr       *clientReader       // reads the client once the session runs
	observed observedCommand     // the command in flight, for the query insights (mysqlobserve.go)
	mc       *mysqlCache         // nil when the database is not cached
	state    *sessionstate.MySQL // the session's state, followed when mc is not nil
	busy     atomic.Bool         // a command is in flight: the client waits for its answer
	// drain: the server asks the session to end at its next command boundary (drain.go).
	drain drainState

	fatal fatalSlot
	// ready is set once the fields above are, and the stream open: other sessions may KILL it.
	ready atomic.Bool
	// mu guards db, user and stream, which COM_CHANGE_USER replaces, for other goroutines (a
	// KILL, the server's shutdown); the session's own goroutine reads them without it.
	mu sync.Mutex
}

// serveMySQLConn is one MySQL client's whole life, like serveConn for PostgreSQL.
func (s *Server) serveMySQLConn(ctx context.Context, nc net.Conn) {
	start := time.Now()
	log := s.log.With("client", nc.RemoteAddr().String(), "protocol", "mysql")
	defer nc.Close()
	defer func() {
		if r := recover(); r != nil {
			log.Error("session panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	nc.SetDeadline(start.Add(s.cfg.HandshakeTimeout))
	hctx, cancel := context.WithDeadline(ctx, start.Add(s.cfg.HandshakeTimeout))
	defer cancel()

	sess := &mysqlSession{s: s, log: log}
	sess.initDrain()
	sess.id = s.myConns.add(sess)
	defer s.myConns.remove(sess.id)

	conn, console, err := s.acceptMySQL(hctx, nc, sess)
	if err != nil {
		s.refuseMySQL(log, err)
		return
	}
	if console {
		s.serveMySQLConsole(ctx, conn)
		return
	}
	db := sess.db
	sess.mu.Lock()
	sess.user = conn.Response.User
	sess.mu.Unlock()
	sess.nc, sess.r, sess.conn = conn.Net, conn.Reader, conn
	log = log.With("db", db.Name, "user", sess.user)
	sess.log = log

	stream, err := s.openMySQL(ctx, hctx, sess, conn)
	if err != nil {
		s.failMySQL(log, conn, mysqlOriginError(err))
		return
	}
	// No read deadline from here on but the one a KILL sets (through sess.end); killable from
	// here on, since a client may send KILL as soon as it has this one's OK.
	sess.nc.SetReadDeadline(time.Time{})
	sess.ready.Store(true)
	if err := conn.Finish(sess.status); err != nil {
		stream.Close()
		return
	}
	sess.nc.SetWriteDeadline(time.Time{})
	sess.r.SetMax(s.cfg.MaxMessage)

	s.m.setupTime.Observe(time.Since(start).Seconds())
	s.m.sessions.WithLabelValues(db.Name).Inc()
	defer s.countOpen(db.Name)()
	log.Debug("session started")
	sess.run(ctx)
	log.Debug("session ended", "duration", time.Since(start))
}

// acceptMySQL greets the client and checks its login; console reports that it asked for the
// admin console (admin.go) instead of a database, which sess.db is otherwise.
func (s *Server) acceptMySQL(hctx context.Context, nc net.Conn, sess *mysqlSession) (conn *mysqlwire.Conn, console bool, err error) {
	greet := s.mysqlGreeting(hctx)
	hs := mysqlwire.Handshake{ServerVersion: greet.version, ConnID: sess.id, Capabilities: greet.caps, ExtCapabilities: greet.ext,
		Collation: greet.collation, Status: greet.status, AuthPlugin: greet.plugin}
	conn, err = mysqlwire.Accept(hctx, nc, mysqlwire.Config{Handshake: hs, TLS: s.mysqlTLS, Lookup: func(r *mysqlwire.Response) (mysqlwire.Account, error) {
		if console = s.wantsMySQLConsole(r.Database); console {
			return s.mysqlConsoleAccount(r.User), nil
		}
		db, e := s.mysqlDatabase(r)
		if e != nil {
			return mysqlwire.Account{}, e
		}
		sess.mu.Lock() // identity reads it from other goroutines (drain, KILL)
		sess.db = db
		sess.mu.Unlock()
		return s.mysqlLogin(hctx, db, r.User)
	}, Refusing: s.mysqlRefusing(hctx, nc.RemoteAddr(), func() Database {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.db
	})})
	return conn, console, err
}

// openMySQL opens the session of a client whose login succeeded on the pool side: what the
// client negotiated goes there as it is, even where this database's origin lacks a flag the
// greeting's had (the pool side answers in the client's format). The stream lives in the
// server's context, as for PostgreSQL sessions: a transport may tie the stream's life to it,
// and the handshake's (hctx) ends with the handshake.
func (s *Server) openMySQL(ctx, hctx context.Context, sess *mysqlSession, conn *mysqlwire.Conn) (link.Stream, error) {
	db := sess.db
	profile, err := s.cfg.Transport.Profile(hctx, db.origin())
	if err != nil {
		sess.log.Warn("origin unavailable for a new session", "err", err)
		return nil, err
	}
	p := mysqlProfile(profile, db.AllowLocalInfile)
	sess.caps, sess.ext = conn.Capabilities, conn.ExtCapabilities
	if !db.AllowLocalInfile {
		sess.caps &^= mysql.CLIENT_LOCAL_FILES
	}
	sess.status = p.status
	sess.params = withPasswordHash(mysqlParams(&conn.Response, sess.caps, sess.ext), conn.PasswordHash)
	stream, err := s.cfg.Transport.Open(ctx, db.origin(), sess.params)
	if err != nil {
		sess.log.Warn("opening the session on the pool side failed", "err", err)
		return nil, err
	}
	sess.mu.Lock()
	sess.stream = stream
	sess.mu.Unlock()
	sess.mc, sess.state = s.newMySQLCache(db, sess.user, sess.caps, sess.ext, conn.Response.Collation, stream.Caps())
	return stream, nil
}

// mysqlGreeting is what the handshake says before the client names its database: the profile
// of the first MySQL database, or defaults if the origin was never reached.
type mysqlGreeting struct {
	version   string
	caps      uint32
	ext       uint32 // MariaDB's extended capabilities
	collation byte
	status    uint16
	plugin    string
}

func (s *Server) mysqlGreeting(ctx context.Context) mysqlGreeting {
	g := mysqlGreeting{version: mysqlDefaultVersion, caps: mysqlwire.Capabilities(mysqlwire.ForwardedCapabilities, false),
		collation: mysqlDefaultCollation, status: mysql.SERVER_STATUS_AUTOCOMMIT, plugin: mysqlwire.NativePassword}
	myDBs := s.dbs.Load().my
	if len(myDBs) == 0 {
		return g
	}
	first := myDBs[0]
	if first.MySQLAuth != "" {
		g.plugin = first.MySQLAuth
	}
	localInfile := false
	for _, d := range myDBs {
		localInfile = localInfile || d.AllowLocalInfile
	}
	// Bounded: a client must not spend its whole handshake timeout waiting for an origin
	// that is down; it then gets the defaults, and an error once it has named its database.
	ctx, cancel := context.WithTimeout(ctx, mysqlGreetingWait)
	defer cancel()
	profile, err := s.cfg.Transport.Profile(ctx, first.origin())
	if err != nil {
		g.caps = mysqlwire.Capabilities(mysqlwire.ForwardedCapabilities, localInfile)
		return g
	}
	p := mysqlProfile(profile, localInfile)
	g.version, g.caps, g.ext, g.status = p.version, p.caps, p.ext, p.status
	if p.collation != 0 {
		g.collation = p.collation
	}
	return g
}

// mysqlOrigin is a MySQL origin profile (link.Profile.Parameters, see the contract in
// pool/mysql) as the edge uses it.
type mysqlOrigin struct {
	version   string
	caps      uint32 // what the edge advertises for this origin
	ext       uint32 // and of MariaDB's extended capabilities
	collation byte
	status    uint16
}

func mysqlProfile(profile link.Profile, localInfile bool) mysqlOrigin {
	pp := profile.Parameters
	o := mysqlOrigin{version: pp["server_version"], status: mysql.SERVER_STATUS_AUTOCOMMIT}
	if o.version == "" {
		o.version = mysqlDefaultVersion
	}
	originCaps := mysqlwire.ForwardedCapabilities
	if v, err := strconv.ParseUint(pp["capabilities"], 10, 32); err == nil {
		originCaps = uint32(v)
	}
	o.caps = mysqlwire.Capabilities(originCaps, localInfile)
	if v, err := strconv.ParseUint(pp["ext_capabilities"], 10, 32); err == nil {
		o.ext = uint32(v) & mysqlwire.ForwardedExtCapabilities
	}
	if v, err := strconv.ParseUint(pp["collation"], 10, 8); err == nil {
		o.collation = byte(v)
	}
	if v, err := strconv.ParseUint(pp["status"], 10, 16); err == nil {
		o.status = uint16(v)
	}
	return o
}

// mysqlDatabase finds the database a client's handshake asks for. A client that names none
// gets the first MySQL database whose user it logs in as, else the first MySQL database.
func (s *Server) mysqlDatabase(r *mysqlwire.Response) (Database, error) {
	dbs := s.dbs.Load()
	if r.Database != "" {
		db, ok := dbs.myByName[r.Database]
		if !ok {
			return Database{}, mysqlwire.Errorf(mysqlwire.ErBadDB, r.Database)
		}
		return db, nil
	}
	if len(dbs.my) == 0 {
		return Database{}, mysqlwire.Errorf(mysqlwire.ErNoDB)
	}
	for _, d := range dbs.my {
		if d.User == r.User {
			return d, nil
		}
	}
	return dbs.my[0], nil
}

// mysqlAccount is what a client of db must prove.
func mysqlAccount(db Database) mysqlwire.Account {
	return mysqlwire.Account{User: db.User, Password: db.Password, Plugin: db.MySQLAuth, Trust: db.Auth == "trust"}
}

// mysqlParams are the Open parameters of a MySQL session (see the contract in pool/mysql).
func mysqlParams(r *mysqlwire.Response, caps, ext uint32) map[string]string {
	params := map[string]string{
		"user": r.User,
		// The client's database is the edge's name for the origin's database (the origin
		// URL's), which the pool side starts each session in; the names may differ.
		"database":     "",
		"capabilities": strconv.FormatUint(uint64(caps&^(mysql.CLIENT_SSL|mysql.CLIENT_COMPRESS)), 10),
		"collation":    strconv.Itoa(int(r.Collation)),
		// Tells a QUIC tunnel that the stream carries MySQL packets.
		tunnel.ProtocolParam: "mysql",
	}
	if ext != 0 {
		params["ext_capabilities"] = strconv.FormatUint(uint64(ext), 10)
	}
	for k, v := range r.Attrs {
		params["attr."+k] = v
	}
	return params
}

// refuseMySQL logs and counts a failed connection phase; Accept has sent the ERR, if any.
func (s *Server) refuseMySQL(log *slog.Logger, err error) {
	var e *mysqlwire.Error
	if errors.As(err, &e) {
		s.m.refusals.WithLabelValues(e.Code.Name()).Inc()
		log.Info("client refused", "code", int(e.Code), "reason", e.Code.Name())
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
		log.Debug("handshake failed", "err", err)
	}
}

func (s *Server) failMySQL(log *slog.Logger, c *mysqlwire.Conn, e *mysqlwire.Error) {
	c.Fail(e)
	s.refuseMySQL(log, e)
}
