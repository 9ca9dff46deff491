package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

var mysrv *mytest.Server

func TestMain(m *testing.M) { os.Exit(mytest.Main(m, &mysrv)) }

// edge is a MySQL edge in front of the test's MariaDB, with the databases given.
type edge struct {
	addr   string
	origin *rawOrigin
	srv    *Server
	stop   context.CancelFunc // ends ServeMySQL
}

func startMySQLEdge(t *testing.T, cfg Config, dbs ...Database) *edge {
	t.Helper()
	e := &edge{origin: &rawOrigin{addr: mysrv.Addr(), user: mytest.AppUser, password: mytest.AppPassword}}
	transport := rawTransport{}
	for i := range dbs {
		dbs[i].Protocol = ProtocolMySQL
		transport[dbs[i].Name] = e.origin
	}
	cfg.Databases, cfg.Transport = dbs, transport
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.srv = New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeMySQL(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMySQL: %v", err)
		}
	})
	return e
}

// appDB is the test server's database as the edge serves it.
func appDB(auth string) Database {
	return Database{Name: mytest.AppDB, User: "edgeuser", Password: "edge-pw", MySQLAuth: auth}
}

func (e *edge) open(t *testing.T, user, password, db, params string) *sql.DB {
	t.Helper()
	dsn := user + ":" + password + "@tcp(" + e.addr + ")/" + db + "?timeout=5s" + params
	conn, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mysqlErrorNumber(err error) uint16 {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"postgresql"}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestMySQLClientsLogInAndQueryThroughTheEdge(t *testing.T) {
	for _, tc := range []struct {
		name, auth, params string
	}{
		{"mysql_native_password", mysqlwire.NativePassword, ""},
		{"caching_sha2_password", mysqlwire.CachingSHA2Password, ""},
		{"caching_sha2_password over TLS", mysqlwire.CachingSHA2Password, "&tls=skip-verify"},
		{"mysql_native_password over TLS with interpolated parameters", mysqlwire.NativePassword, "&tls=skip-verify&interpolateParams=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startMySQLEdge(t, Config{TLS: testTLS(t)}, appDB(tc.auth))
			db := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, tc.params)
			var one int
			if err := db.QueryRowContext(ctx(t), "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("SELECT 1: %v, %d", err, one)
			}
			// Prepared (COM_STMT_PREPARE/EXECUTE/CLOSE) unless interpolateParams.
			var s string
			if err := db.QueryRowContext(ctx(t), "SELECT CONCAT(?, ?)", "a", 42).Scan(&s); err != nil || s != "a42" {
				t.Fatalf("prepared: %v, %q", err, s)
			}
			if strings.Contains(tc.params, "tls") {
				var cipher string
				if err := db.QueryRowContext(ctx(t), "SELECT 'tls'").Scan(&cipher); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestMySQLAuthSwitchToTheDatabasesPlugin(t *testing.T) {
	// The greeting offers the first database's plugin; the second asks for the other one.
	other := appDB(mysqlwire.CachingSHA2Password)
	other.Name = "app2"
	e := startMySQLEdge(t, Config{}, Database{Name: "first", User: "x", Password: "y", MySQLAuth: mysqlwire.NativePassword}, other)
	e.origin.mu.Lock()
	e.origin.profile = nil
	e.origin.mu.Unlock()
	db := e.open(t, "edgeuser", "edge-pw", "app2", "")
	if err := db.PingContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestMySQLRefusals(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(mysqlwire.CachingSHA2Password))
	for _, tc := range []struct {
		name, user, password, db string
		want                     uint16
	}{
		{"wrong password is 1045", "edgeuser", "nope", mytest.AppDB, 1045},
		{"wrong user is 1045", "root", "edge-pw", mytest.AppDB, 1045},
		{"unknown database is 1049", "edgeuser", "edge-pw", "nosuch", 1049},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.open(t, tc.user, tc.password, tc.db, "").PingContext(ctx(t))
			if got := mysqlErrorNumber(err); got != tc.want {
				t.Fatalf("got %v, want error %d", err, tc.want)
			}
		})
	}
}

func TestMySQLSetupCostsNoOriginRoundTrip(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(""))
	if err := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, "").PingContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The profile is known now; another client logs in and pings on the edge alone.
	e.origin.addr = "127.0.0.1:1" // any origin I/O would fail
	if err := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, "").PingContext(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e.origin.profiles != 1 {
		t.Fatalf("origin asked for its profile %d times", e.origin.profiles)
	}
}

func TestMySQLMultiStatementsUseAndInitDB(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(""))
	db := e.open(t, "edgeuser", "edge-pw", "", "&multiStatements=true")
	db.SetMaxOpenConns(1)
	c := ctx(t)
	// A client that names no database starts in the origin's.
	var name sql.NullString
	if err := db.QueryRowContext(c, "SELECT DATABASE()").Scan(&name); err != nil || name.String != mytest.AppDB {
		t.Fatalf("the origin's database at first: %v %v", err, name)
	}
	if _, err := db.ExecContext(c, "USE "+mytest.AppDB); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(c, "CREATE TABLE IF NOT EXISTS multi (id int); INSERT INTO multi VALUES (1); INSERT INTO multi VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(c, "SELECT COUNT(*) FROM multi; SELECT 'second'")
	if err != nil {
		t.Fatal(err)
	}
	sets := 0
	for {
		for rows.Next() {
		}
		sets++
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil || sets != 2 {
		t.Fatalf("result sets %d, %v", sets, err)
	}
	rows.Close()

	// COM_INIT_DB from go-mysql's client.
	cl, err := client.Connect(e.addr, "edgeuser", "edge-pw", "")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.UseDB(mytest.AppDB); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Execute("SELECT DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.GetString(0, 0); got != mytest.AppDB {
		t.Fatalf("DATABASE() after COM_INIT_DB is %q", got)
	}
}

func TestMySQLKillQueryFromAnotherConnection(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(""))
	victim, err := client.Connect(e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	id := victim.GetConnectionID()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := victim.Execute("SELECT SLEEP(30)")
		done <- err
	}()
	killer, err := client.Connect(e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	// KILL QUERY reaches only a running query: retry until the victim's has started.
	for {
		if _, err := killer.Execute("KILL QUERY " + itoa(id)); err != nil {
			select {
			case verr := <-done:
				t.Fatalf("%v; the victim's query: %v", err, verr)
			default:
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			if time.Since(start) > 20*time.Second {
				t.Fatalf("the query ran to its end: %v", err)
			}
			if _, err := victim.Execute("SELECT 1"); err != nil {
				t.Fatalf("the victim's session is gone: %v", err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestMySQLKillOfAnotherUsersSessionIsUnknownThread(t *testing.T) {
	other := appDB("")
	other.Name, other.User = "app2", "someone"
	e := startMySQLEdge(t, Config{}, appDB(""), other)
	victim, err := client.Connect(e.addr, "someone", "edge-pw", "app2")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	killer, err := client.Connect(e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	_, err = killer.Execute("KILL " + itoa(victim.GetConnectionID()))
	if got := mysqlErrorCode(err); got != 1094 {
		t.Fatalf("got %v, want 1094", err)
	}
	if _, err := victim.Execute("SELECT 1"); err != nil {
		t.Fatalf("the victim was killed: %v", err)
	}
}

// mysqlErrorCode is the error number go-mysql's client got.
func mysqlErrorCode(err error) uint16 {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code
	}
	return 0
}

func TestMySQLQueueTimeoutIs1040AndTheSessionGoesOn(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(""))
	e.origin.queueTimeouts = 1
	db := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, "&interpolateParams=true")
	db.SetMaxOpenConns(1)
	_, err := db.ExecContext(ctx(t), "SELECT 1")
	if got := mysqlErrorNumber(err); got != 1040 {
		t.Fatalf("got %v, want 1040", err)
	}
	if _, err := db.ExecContext(ctx(t), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

func TestMySQLOversizedPacketEndsThatSessionOnly(t *testing.T) {
	e := startMySQLEdge(t, Config{MaxMessage: 4 << 10}, appDB(""))
	db := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, "")
	db.SetMaxOpenConns(1)
	_, err := db.ExecContext(ctx(t), "SELECT '"+strings.Repeat("x", 8<<10)+"'")
	if got := mysqlErrorNumber(err); got != 1153 {
		t.Fatalf("got %v, want 1153", err)
	}
	if err := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, "").PingContext(ctx(t)); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// rawLogin logs in to addr by hand with mysql_native_password and returns the connection, a
// reader of it and the handshake's salt.
func rawLogin(t *testing.T, addr, user, password, db string) (net.Conn, *mysqlwire.Reader, []byte) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := mysqlwire.NewReader(nc, 1<<20)
	raw, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := parseHandshake(mysqlwire.Payload(raw))
	if err != nil {
		t.Fatal(err)
	}
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
		mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_LONG_PASSWORD)
	auth := mysql.CalcNativePassword(hs.Salt[:], []byte(password))
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(append(p, 45), make([]byte, 23)...)
	p = append(append(p, user...), 0)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(append(p, db...), 0)
	p = append(append(p, mysqlwire.NativePassword...), 0)
	if _, err := nc.Write(mysqlwire.AppendPacket(nil, 1, p)); err != nil {
		t.Fatal(err)
	}
	if p := readPayload(t, r); p[0] != 0 {
		t.Fatalf("login: %q", p)
	}
	return nc, r, hs.Salt[:]
}

func readPayload(t *testing.T, r *mysqlwire.Reader) []byte {
	t.Helper()
	raw, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), mysqlwire.Payload(raw)...)
}

// changeUser sends COM_CHANGE_USER scrambled with salt and returns the answer's payload.
func changeUser(t *testing.T, nc net.Conn, r *mysqlwire.Reader, salt []byte, user, password, db string) []byte {
	t.Helper()
	auth := mysql.CalcNativePassword(salt, []byte(password))
	p := append([]byte{mysql.COM_CHANGE_USER}, user...)
	p = append(append(p, 0, byte(len(auth))), auth...)
	p = append(append(p, db...), 0)
	p = append(p, 45, 0)
	p = append(append(p, mysqlwire.NativePassword...), 0)
	if _, err := nc.Write(mysqlwire.AppendPacket(nil, 0, p)); err != nil {
		t.Fatal(err)
	}
	return readPayload(t, r)
}

func TestMySQLChangeUserAuthenticatesAtTheEdgeAndStartsAFreshSession(t *testing.T) {
	other := appDB(mysqlwire.NativePassword)
	other.Name, other.User, other.Password = "app2", "reporter", "report-pw"
	e := startMySQLEdge(t, Config{}, appDB(mysqlwire.NativePassword), other)
	nc, r, salt := rawLogin(t, e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	query := func(q string) []byte {
		nc.Write(mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, q...)))
		first := readPayload(t, r)
		if first[0] == 0xff || first[0] == 0 {
			return first
		}
		var last []byte
		for { // columns, rows, then the closing OK (0xfe) of CLIENT_DEPRECATE_EOF
			last = readPayload(t, r)
			if last[0] == 0xfe && len(last) < 0xffffff || last[0] == 0xff {
				return first
			}
		}
	}
	if p := query("SET @x = 1"); p[0] != 0 {
		t.Fatalf("SET: %q", p)
	}
	if p := changeUser(t, nc, r, salt, "reporter", "report-pw", "app2"); p[0] != 0 {
		t.Fatalf("COM_CHANGE_USER: %q", p)
	}
	if p := query("SELECT 1"); p[0] == 0xff {
		t.Fatalf("after COM_CHANGE_USER: %q", p)
	}
	// A wrong password is refused and ends the session.
	if p := changeUser(t, nc, r, salt, "edgeuser", "nope", mytest.AppDB); p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != 1045 {
		t.Fatalf("COM_CHANGE_USER with a wrong password: %q", p)
	}
	if _, err := r.ReadPacket(); err == nil {
		t.Fatal("the session goes on after a failed COM_CHANGE_USER")
	}
}

func TestMySQLClientSilentAfterTheGreetingIsDroppedAtTheHandshakeTimeout(t *testing.T) {
	e := startMySQLEdge(t, Config{HandshakeTimeout: 200 * time.Millisecond}, appDB(""))
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("the edge did not close the connection: %v", err)
	}
}

func TestMySQLShutdownEndsSessionsWithServerShutdown(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(""))
	_, r, _ := rawLogin(t, e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	e.stop()
	if p := readPayload(t, r); p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != 1053 {
		t.Fatalf("got %q, want ERR 1053", p)
	}
	if _, err := r.ReadPacket(); !errors.Is(err, io.EOF) {
		t.Fatalf("after ERR 1053: %v", err)
	}
}

func TestMySQLPingAtTheEdgeReportsTheTransaction(t *testing.T) {
	e := startMySQLEdge(t, Config{}, appDB(mysqlwire.NativePassword))
	nc, r, _ := rawLogin(t, e.addr, "edgeuser", "edge-pw", mytest.AppDB)
	status := func(cmd []byte) uint16 {
		t.Helper()
		nc.Write(mysqlwire.AppendPacket(nil, 0, cmd))
		p := readPayload(t, r)
		if p[0] != 0 || len(p) < 5 {
			t.Fatalf("got %q, want OK", p)
		}
		return binary.LittleEndian.Uint16(p[3:])
	}
	ping := []byte{mysql.COM_PING}
	if st := status(ping); st&mysql.SERVER_STATUS_IN_TRANS != 0 || st&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
		t.Fatalf("status %#x before BEGIN", st)
	}
	status(append([]byte{mysql.COM_QUERY}, "BEGIN"...))
	if st := status(ping); st&mysql.SERVER_STATUS_IN_TRANS == 0 {
		t.Fatalf("status %#x inside a transaction", st)
	}
	status(append([]byte{mysql.COM_QUERY}, "COMMIT"...))
	if st := status(ping); st&mysql.SERVER_STATUS_IN_TRANS != 0 {
		t.Fatalf("status %#x after COMMIT", st)
	}
}
