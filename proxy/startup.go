package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"strings"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// startup is what a client's handshake settled.
type startup struct {
	nc     net.Conn       // the client connection, TLS once upgraded
	r      *pgwire.Reader // reads nc; rebuilt after the TLS upgrade
	params map[string]string
	db     Database
	tls    bool
}

// errHandled means the handshake ended on purpose with nothing more to send (a CancelRequest).
var errHandled = errors.New("proxy: handled")

// A startup packet is some hundred bytes; a session's messages and answers are mostly short
// too, and an idle session holds its buffers, which grow for those that are not.
const (
	startupBuffer = 1 << 10 // the startup reader's first size
	sessionBuffer = 2 << 10 // the session reader's
	answerBuffer  = 1 << 10 // the buffer a session writes its answers from
)

// handshake runs the startup phase: TLS and GSS negotiation, a CancelRequest, or a
// StartupMessage followed by authentication. A *pgwire.Error it returns is for the client, on
// the connection it returns (TLS once upgraded: a refusal after the upgrade goes over TLS).
func (s *Server) handshake(ctx context.Context, nc net.Conn) (*startup, error) {
	st := &startup{nc: nc, r: pgwire.NewReaderSize(nc, pgwire.MaxStartupLen, startupBuffer)}
	for {
		body, err := st.r.ReadStartup()
		if err != nil {
			if errors.Is(err, pgwire.ErrBadLength) || errors.Is(err, pgwire.ErrTooLarge) {
				return st, pgwire.Fatal(pgwire.ProtocolViolation, "invalid length of startup packet")
			}
			return st, err
		}
		kind, params, key, err := pgwire.ParseStartup(body)
		switch kind {
		case pgwire.SSLRequest, pgwire.GSSEncRequest:
			if err != nil {
				return st, err
			}
			if st.r.Buffered() > 0 {
				// Bytes after the request, before the handshake: someone is injecting plaintext.
				return st, pgwire.Fatal(pgwire.ProtocolViolation, "received unencrypted data after SSL request")
			}
			if kind == pgwire.GSSEncRequest || s.cfg.TLS == nil || st.tls {
				if _, err := nc.Write([]byte{'N'}); err != nil {
					return st, err
				}
				continue
			}
			if _, err := nc.Write([]byte{'S'}); err != nil {
				return st, err
			}
			tc := tls.Server(nc, s.cfg.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				return st, err
			}
			st.nc, st.tls = tc, true
			st.r = pgwire.NewReaderSize(tc, pgwire.MaxStartupLen, startupBuffer) // never reuse bytes read before TLS
		case pgwire.CancelRequest:
			if err == nil {
				s.cancel(ctx, key)
			}
			return st, errHandled
		case pgwire.Startup:
			if err != nil {
				return st, err
			}
			if _, minor := pgwire.StartupVersion(body); minor > 0 || hasProtocolOptions(params) {
				if err := negotiateVersion(st.nc, params); err != nil {
					return st, err
				}
			}
			st.params = params
			if s.wantsConsole(params["database"]) {
				return st, s.serveConsole(ctx, st) // a refusal goes on st.nc, TLS or not
			}
			if err := s.authenticate(ctx, st); err != nil {
				return st, s.loginFailed(ctx, st, err)
			}
			s.observe(st)
			return st, nil
		default:
			return st, err
		}
	}
}

// hasProtocolOptions reports whether the client asked for protocol extensions (_pq_.*).
func hasProtocolOptions(params map[string]string) bool {
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			return true
		}
	}
	return false
}

// negotiateVersion tells a client asking for protocol 3.x (x > 0) or extensions that we speak
// 3.0 without them, as PostgreSQL does.
func negotiateVersion(nc net.Conn, params map[string]string) error {
	var opts []string
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			opts = append(opts, k)
			delete(params, k)
		}
	}
	msg, h := pgwire.BeginFrame(nil, 'v')
	msg = append(msg, 0, 0, 0, 0) // newest minor version supported: 0
	msg = append(msg, byte(len(opts)>>24), byte(len(opts)>>16), byte(len(opts)>>8), byte(len(opts)))
	for _, o := range opts {
		msg = append(append(msg, o...), 0)
	}
	_, err := nc.Write(pgwire.FinishFrame(msg, h))
	return err
}

// authenticate finds the client's database and checks its password at the edge.
func (s *Server) authenticate(ctx context.Context, st *startup) error {
	name := st.params["database"]
	db, ok := s.dbs.Load().pg[name]
	if !ok {
		return pgwire.Fatal(pgwire.InvalidCatalogName, `database "`+name+`" does not exist`)
	}
	if s.Disabled(name) {
		return pgwire.Fatal(pgwire.CannotConnectNow, `database "`+name+`" does not allow connections`)
	}
	st.db = db
	user := st.params["user"]
	password := db.Password
	if db.Auth == pgwire.AuthTrust {
		return nil
	}
	if db.AnyRole {
		return s.authenticateRole(ctx, st)
	}
	if user != db.User {
		// Challenge anyway, with a password nobody knows, so that a wrong user name looks
		// exactly like a wrong password (PostgreSQL does not reveal which roles exist).
		var b [16]byte
		rand.Read(b[:])
		password = hex.EncodeToString(b[:])
	}
	return pgwire.Authenticate(st.nc, st.r, db.Auth, user, password, st.tls)
}

// reportedParams are the parameters PostgreSQL reports to clients (GUC_REPORT) that a client
// can set at startup; the edge reports the client's own value for these.
var reportedParams = []string{"application_name", "client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"search_path", "default_transaction_read_only"}

// appendStartupAnswer appends AuthenticationOk, the ParameterStatus values (the origin's,
// with the client's startup settings over them, options and explicit parameters combined as
// PostgreSQL combines them), BackendKeyData and ReadyForQuery. application_name is exactly
// what the client sent, or empty, whatever the origin connections call themselves.
func appendStartupAnswer(dst []byte, profile, params map[string]string, key pgwire.CancelKey) []byte {
	dst = pgwire.AppendAuthenticationOK(dst)
	status := func(k, v string) {
		var h int
		dst, h = pgwire.BeginFrame(dst, 'S')
		dst = append(append(dst, k...), 0)
		dst = append(append(dst, v...), 0)
		dst = pgwire.FinishFrame(dst, h)
	}
	settings := pgwire.StartupSettings(params)
	for k, v := range profile {
		if strings.EqualFold(k, "application_name") {
			continue
		}
		for _, rk := range reportedParams {
			if strings.EqualFold(k, rk) {
				if cv, ok := settings[strings.ToLower(k)]; ok {
					if strings.EqualFold(k, "DateStyle") {
						cv, _ = canonicalDateStyle(cv, v)
					}
					v = cv
				}
			}
		}
		status(k, v)
	}
	status("application_name", settings["application_name"])
	var h int
	dst, h = pgwire.BeginFrame(dst, 'K')
	dst = append(dst, byte(key.PID>>24), byte(key.PID>>16), byte(key.PID>>8), byte(key.PID),
		byte(key.Secret>>24), byte(key.Secret>>16), byte(key.Secret>>8), byte(key.Secret))
	dst = pgwire.FinishFrame(dst, h)
	return pgwire.AppendReadyForQuery(dst, 'I')
}
