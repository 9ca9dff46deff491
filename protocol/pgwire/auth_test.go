package pgwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/certs"
)

// fakeServer is the smallest PostgreSQL server that authenticates with this package: startup,
// optional TLS, Authenticate, the startup reply, then "select 1" until Terminate. It serves
// one connection and reports what Authenticate returned.
type fakeServer struct {
	method    AuthMethod
	password  string
	tlsConfig *tls.Config // nil: answer SSLRequest with 'N'

	addr    string
	authErr chan error
}

func startFakeServer(t *testing.T, s *fakeServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.authErr = make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			s.authErr <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		s.serve(t, conn)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
}

func (s *fakeServer) serve(t *testing.T, conn net.Conn) {
	var rw io.ReadWriter = conn
	r := NewReader(conn, 1<<20)
	overTLS := false
	var params map[string]string
	for params == nil {
		body, err := r.ReadStartup()
		if err != nil {
			s.authErr <- err
			return
		}
		kind, p, _, err := ParseStartup(body)
		if err != nil {
			s.authErr <- err
			return
		}
		switch {
		case kind == SSLRequest && s.tlsConfig != nil && !overTLS:
			rw.Write([]byte{'S'})
			tc := tls.Server(conn, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				s.authErr <- err
				return
			}
			rw, r, overTLS = tc, NewReader(tc, 1<<20), true // nothing buffered survives the upgrade
		case kind == Startup:
			params = p
		default:
			rw.Write([]byte{'N'})
		}
	}

	err := Authenticate(rw, r, s.method, params["user"], s.password, overTLS)
	s.authErr <- err
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			rw.Write(AppendError(nil, pe))
		}
		return
	}
	buf := AppendAuthenticationOK(nil)
	buf, _ = (&pgproto3.ParameterStatus{Name: "server_version", Value: "17.0"}).Encode(buf)
	buf, _ = (&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{0, 0, 0, 7}}).Encode(buf)
	buf = AppendReadyForQuery(buf, TxIdle)
	if _, err := rw.Write(buf); err != nil {
		t.Errorf("fake server: %v", err)
		return
	}
	for {
		typ, _, err := r.ReadMessage()
		if err != nil || typ == 'X' {
			return
		}
		if typ != 'Q' {
			t.Errorf("fake server: unexpected message %q", typ)
			return
		}
		buf = buf[:0]
		buf, _ = (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
			{Name: []byte("?column?"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1},
		}}).Encode(buf)
		buf, _ = (&pgproto3.DataRow{Values: [][]byte{[]byte("1")}}).Encode(buf)
		buf, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(buf)
		buf = AppendReadyForQuery(buf, TxIdle)
		rw.Write(buf)
	}
}

func TestAuthenticateWithPgconn(t *testing.T) {
	const user, password = "alice", "s3cret-pässword"
	certDir := t.TempDir()
	cert, err := certs.LoadOrCreate("", "", certDir)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig := ServerTLSConfig(cert)
	verifyFull := "verify-full sslrootcert=" + filepath.Join(certDir, "server.crt")

	tests := []struct {
		name           string
		method         AuthMethod
		clientPassword string
		sslmode        string // "" for disable
		wantCode       string // "" for success
		wantMessage    string
	}{
		{name: "scram-sha-256 accepts the right password", method: AuthSCRAM, clientPassword: password},
		{name: "scram-sha-256 refuses a wrong password with 28P01", method: AuthSCRAM, clientPassword: "wrong",
			wantCode: "28P01", wantMessage: `password authentication failed for user "alice"`},
		{name: "scram-sha-256 over TLS accepts the right password", method: AuthSCRAM, clientPassword: password, sslmode: "require"},
		{name: "scram-sha-256 over TLS verified against the generated certificate accepts the right password",
			method: AuthSCRAM, clientPassword: password, sslmode: verifyFull},
		{name: "md5 accepts the right password", method: AuthMD5, clientPassword: password},
		{name: "md5 refuses a wrong password with 28P01", method: AuthMD5, clientPassword: "wrong",
			wantCode: "28P01", wantMessage: `password authentication failed for user "alice"`},
		{name: "cleartext is refused without TLS with 28000", method: AuthPassword, clientPassword: password,
			wantCode: "28000", wantMessage: "cleartext password authentication requires TLS"},
		{name: "cleartext over TLS accepts the right password", method: AuthPassword, clientPassword: password, sslmode: "require"},
		{name: "cleartext over TLS refuses a wrong password with 28P01", method: AuthPassword, clientPassword: "wrong", sslmode: "require",
			wantCode: "28P01", wantMessage: `password authentication failed for user "alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeServer{method: tt.method, password: password}
			sslmode := "disable"
			if tt.sslmode != "" {
				s.tlsConfig, sslmode = tlsConfig, tt.sslmode
			}
			startFakeServer(t, s)
			host, port, _ := net.SplitHostPort(s.addr)
			cfg, err := pgconn.ParseConfig("host=" + host + " port=" + port + " user=" + user +
				" dbname=app sslmode=" + sslmode + " connect_timeout=10")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Password = tt.clientPassword

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := pgconn.ConnectConfig(ctx, cfg)
			authErr := <-s.authErr

			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("connect: %v (server: %v)", err, authErr)
				}
				defer conn.Close(ctx)
				if got := conn.ParameterStatus("server_version"); got != "17.0" {
					t.Errorf("server_version = %q", got)
				}
				rows, err := conn.Exec(ctx, "select 1").ReadAll()
				if err != nil || len(rows) != 1 || len(rows[0].Rows) != 1 || string(rows[0].Rows[0][0]) != "1" {
					t.Errorf("select 1 = %v, %v", rows, err)
				}
				return
			}
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connect succeeded, want an error")
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("connect: %v, want a PgError", err)
			}
			if pgErr.Code != tt.wantCode || pgErr.Message != tt.wantMessage || pgErr.Severity != "FATAL" {
				t.Errorf("client got %s %s %q, want FATAL %s %q", pgErr.Severity, pgErr.Code, pgErr.Message, tt.wantCode, tt.wantMessage)
			}
			var pe *Error
			if !errors.As(authErr, &pe) || string(pe.Code) != tt.wantCode {
				t.Errorf("Authenticate returned %v, want SQLSTATE %s", authErr, tt.wantCode)
			}
			for _, text := range []string{err.Error(), authErr.Error()} {
				if strings.Contains(text, password) || strings.Contains(text, tt.clientPassword) {
					t.Errorf("error text %q contains a password", text)
				}
			}
		})
	}
}

// scramServer runs Authenticate with SCRAM on one end of a pipe and returns the client end and
// where Authenticate's result arrives.
func scramServer(t *testing.T) (client net.Conn, cr *Reader, result <-chan error) {
	t.Helper()
	server, client := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer server.Close()
		done <- Authenticate(server, NewReader(server, 1<<16), AuthSCRAM, "alice", "secret", false)
	}()
	t.Cleanup(func() { client.Close() })
	cr = NewReader(client, 1<<16)
	if typ, body, err := cr.ReadMessage(); err != nil || typ != 'R' || string(body) != "\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00" {
		t.Fatalf("AuthenticationSASL: %q %q %v", typ, body, err)
	}
	return client, cr, done
}

func saslInitialResponse(mechanism, msg string) []byte {
	body := append([]byte(mechanism), 0)
	body = binary.BigEndian.AppendUint32(body, uint32(len(msg)))
	return AppendFrame(nil, 'p', append(body, msg...))
}

func TestSCRAMRefusesMalformedClientFirstMessages(t *testing.T) {
	tests := []struct {
		name    string
		message []byte
		want    Code
	}{
		{"channel binding data is refused because PLUS is never offered",
			saslInitialResponse("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc"), ProtocolViolation},
		{"the PLUS mechanism is refused because it is never offered",
			saslInitialResponse("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"), ProtocolViolation},
		{"an authorization identity is not supported",
			saslInitialResponse("SCRAM-SHA-256", "n,a=bob,n=,r=abc"), FeatureNotSupported},
		{"a mandatory extension is not supported",
			saslInitialResponse("SCRAM-SHA-256", "n,,m=ext,n=,r=abc"), FeatureNotSupported},
		{"a missing nonce is malformed",
			saslInitialResponse("SCRAM-SHA-256", "n,,n="), ProtocolViolation},
		{"a nonce with a control character is malformed",
			saslInitialResponse("SCRAM-SHA-256", "n,,n=,r=a\x01b"), ProtocolViolation},
		{"an unknown channel binding flag is malformed",
			saslInitialResponse("SCRAM-SHA-256", "x,,n=,r=abc"), ProtocolViolation},
		{"a wrong initial response length is malformed",
			AppendFrame(nil, 'p', []byte("SCRAM-SHA-256\x00\x00\x00\x00\x0an,,n=,r=a")), ProtocolViolation},
		{"a message other than a password response is a protocol violation",
			AppendFrame(nil, 'Q', []byte("select 1\x00")), ProtocolViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _, result := scramServer(t)
			if _, err := client.Write(tt.message); err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, client) // a message wrongly accepted is answered; don't block on it
			var pe *Error
			if err := <-result; !errors.As(err, &pe) || pe.Code != tt.want || pe.Severity != SeverityFatal {
				t.Errorf("Authenticate = %v, want FATAL %s", err, tt.want)
			}
		})
	}
}

func TestSCRAMRefusesMalformedClientFinalMessages(t *testing.T) {
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name  string
		final func(nonce string) string
		want  Code
	}{
		{"a nonce other than the server's is malformed",
			func(nonce string) string { return "c=biws,r=" + nonce + "x,p=" + proof }, ProtocolViolation},
		{"a channel binding header other than the first one fails the check",
			func(nonce string) string { return "c=eSws,r=" + nonce + ",p=" + proof }, ProtocolViolation},
		{"a missing proof is malformed",
			func(nonce string) string { return "c=biws,r=" + nonce }, ProtocolViolation},
		{"a short proof is malformed",
			func(nonce string) string { return "c=biws,r=" + nonce + ",p=AAAA" }, ProtocolViolation},
		{"a well-formed but wrong proof is a wrong password",
			func(nonce string) string { return "c=biws,r=" + nonce + ",p=" + proof }, InvalidPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, cr, result := scramServer(t)
			if _, err := client.Write(saslInitialResponse("SCRAM-SHA-256", "n,,n=,r=clientnonce")); err != nil {
				t.Fatal(err)
			}
			typ, body, err := cr.ReadMessage()
			if err != nil || typ != 'R' || len(body) < 4 || binary.BigEndian.Uint32(body) != authSASLContinue {
				t.Fatalf("AuthenticationSASLContinue: %q %q %v", typ, body, err)
			}
			serverFirst := string(body[4:])
			nonce, _, _ := strings.Cut(strings.TrimPrefix(serverFirst, "r="), ",")
			if !strings.HasPrefix(nonce, "clientnonce") || !strings.HasSuffix(serverFirst, ",i="+strconv.Itoa(scramIterations)) {
				t.Fatalf("server-first-message %q", serverFirst)
			}
			if _, err := client.Write(AppendFrame(nil, 'p', []byte(tt.final(nonce)))); err != nil {
				t.Fatal(err)
			}
			var pe *Error
			if err := <-result; !errors.As(err, &pe) || pe.Code != tt.want {
				t.Errorf("Authenticate = %v, want SQLSTATE %s", err, tt.want)
			}
		})
	}
}

func TestSCRAMKeysAreCachedOnlyAfterTheyVerifiedAClient(t *testing.T) {
	a1, err := scramKeysFor("carol", "one")
	if err != nil {
		t.Fatal(err)
	}
	if a2, _ := scramKeysFor("carol", "one"); a2 == a1 {
		t.Error("keys were cached before any client was verified")
	}
	rememberSCRAMKeys(a1)
	if a3, _ := scramKeysFor("carol", "one"); a3 != a1 {
		t.Error("verified keys were derived again")
	}
	b, _ := scramKeysFor("dave", "one")
	c, _ := scramKeysFor("carol", "two")
	if a1 == b || a1 == c || a1.salt == b.salt {
		t.Error("different users or passwords share keys")
	}
}

func TestMD5ResponseMatchesPostgreSQL(t *testing.T) {
	// "md5" || md5(md5('secret' || 'alice') || salt), computed independently with Python's hashlib;
	// md5('secretalice') = 4a0a68b43b6cd5cf266fa02f196e2371 is what pg_authid would store.
	const want = "md598a0412b9c31436fc53776e863350083"
	if got := string(md5Response("alice", "secret", [4]byte{1, 2, 3, 4})); got != want {
		t.Errorf("md5Response = %q, want %q", got, want)
	}
}

func TestParseAuthMethod(t *testing.T) {
	tests := []struct {
		in      string
		want    AuthMethod
		wantErr bool
	}{
		{"", AuthSCRAM, false},
		{"scram-sha-256", AuthSCRAM, false},
		{"md5", AuthMD5, false},
		{"password", AuthPassword, false},
		{"trust", AuthTrust, false},
		{"ident", "", true},
		{"SCRAM-SHA-256", "", true},
	}
	for _, tt := range tests {
		got, err := ParseAuthMethod(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseAuthMethod(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestServerTLSConfigRequiresTLS12AndOffersPostgresALPN(t *testing.T) {
	cert, err := certs.LoadOrCreate("", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerTLSConfig(cert)
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "postgresql" {
		t.Errorf("ServerTLSConfig = %+v", cfg)
	}
}

func TestPasswordMessagesAreChecked(t *testing.T) {
	tests := []struct {
		name   string
		method AuthMethod
		body   string
		want   Code // "" for success
	}{
		{"the right cleartext password is accepted", AuthPassword, "secret\x00", ""},
		{"an empty message is a protocol violation", AuthMD5, "", ProtocolViolation},
		{"a password without its terminator is a protocol violation", AuthPassword, "secret", ProtocolViolation},
		{"bytes after the terminator are a protocol violation", AuthPassword, "secret\x00x\x00", ProtocolViolation},
		{"an empty password is a wrong password", AuthPassword, "\x00", InvalidPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := struct {
				io.Reader
				io.Writer
			}{nil, io.Discard}
			r := NewReader(bytes.NewReader(AppendFrame(nil, 'p', []byte(tt.body))), 1024)
			err := Authenticate(rw, r, tt.method, "alice", "secret", true)
			var pe *Error
			if tt.want == "" && err != nil || tt.want != "" && (!errors.As(err, &pe) || pe.Code != tt.want) {
				t.Errorf("Authenticate = %v, want SQLSTATE %q", err, tt.want)
			}
		})
	}
}
