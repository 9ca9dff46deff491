package d1

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// wire is a raw protocol client for scripts that drivers don't produce.
type wire struct {
	t  *testing.T
	nc net.Conn
	fe *pgproto3.Frontend
}

func dialWire(t *testing.T, db *DB, params map[string]string) *wire {
	t.Helper()
	nc, err := db.Dial(context.Background(), "pipe", "d1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wire{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
	if params == nil {
		params = map[string]string{}
	}
	params["user"] = "d1"
	w.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
	w.until('Z')
	return w
}

func (w *wire) send(msgs ...pgproto3.FrontendMessage) {
	w.t.Helper()
	for _, m := range msgs {
		w.fe.Send(m)
	}
	if err := w.fe.Flush(); err != nil {
		w.t.Fatal(err)
	}
}

// until receives messages up to one of type t and returns them, each summarized as one line.
func (w *wire) until(t byte) []string {
	w.t.Helper()
	var got []string
	for {
		m, err := w.fe.Receive()
		if err != nil {
			w.t.Fatalf("receive: %v (after %q)", err, got)
		}
		line := summarize(m)
		got = append(got, line)
		if line[0] == t {
			return got
		}
	}
}

// summarize writes a message as its type byte and the fields a script checks.
func summarize(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.ParseComplete:
		return "1"
	case *pgproto3.BindComplete:
		return "2"
	case *pgproto3.CloseComplete:
		return "3"
	case *pgproto3.NoData:
		return "n"
	case *pgproto3.PortalSuspended:
		return "s"
	case *pgproto3.EmptyQueryResponse:
		return "I"
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = fmt.Sprintf("%q", v)
			}
		}
		return "D " + strings.Join(vals, " ")
	case *pgproto3.RowDescription:
		var fs []string
		for _, f := range m.Fields {
			fs = append(fs, fmt.Sprintf("%s:%d/%d/%d", f.Name, f.DataTypeOID, f.DataTypeSize, f.Format))
		}
		return "T " + strings.Join(fs, " ")
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("t %v", m.ParameterOIDs)
	case *pgproto3.ErrorResponse:
		return "E " + m.Code + " " + m.Message
	case *pgproto3.NoticeResponse:
		return "N " + m.Code
	case *pgproto3.ParameterStatus:
		return "S " + m.Name + "=" + m.Value
	}
	return fmt.Sprintf("? %T", m)
}

func expectScript(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestStartupReportsAPostgreSQLServer(t *testing.T) {
	db := openDB(t)
	nc, err := db.Dial(context.Background(), "pipe", "d1")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	// SSLRequest first: refused with 'N', then the startup goes on in clear.
	req := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := nc.Read(b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("SSLRequest answer %q, %v", b, err)
	}
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "alice", "database": "main", "application_name": "probe"}})
	fe.Flush()
	var got []string
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, summarize(m))
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{"? *pgproto3.AuthenticationOk", "S server_version=15.0 (slipstream d1 / SQLite 3.",
		"S server_encoding=UTF8", "S client_encoding=UTF8", "S DateStyle=ISO, MDY", "S TimeZone=UTC",
		"S integer_datetimes=on", "S standard_conforming_strings=on", "S application_name=probe",
		"S is_superuser=off", "S session_authorization=alice", "? *pgproto3.BackendKeyData", "Z I"} {
		if !strings.Contains(text, want) {
			t.Errorf("startup lacks %q:\n%s", want, text)
		}
	}
}

func TestExtendedProtocolScript(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, nil)
	w.send(&pgproto3.Query{String: `CREATE TABLE e (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)`})
	expectScript(t, w.until('Z'), "C CREATE TABLE", "Z I")

	// Parameters bound by $N, whatever order SQLite numbers them in; types inferred from columns.
	w.send(&pgproto3.Parse{Name: "ins", Query: `INSERT INTO e (name, id, score, data) VALUES ($2, $1, $3, $4)`},
		&pgproto3.Describe{ObjectType: 'S', Name: "ins"}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "1", "t [20 25 701 17]", "n", "Z I")
	for i := 1; i <= 5; i++ {
		w.send(&pgproto3.Bind{PreparedStatement: "ins", ParameterFormatCodes: []int16{1, 0, 0, 0},
			Parameters: [][]byte{binary.BigEndian.AppendUint64(nil, uint64(i)), []byte(fmt.Sprint("n", i)), []byte("1.5"), []byte(`\x0102`)}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		expectScript(t, w.until('Z'), "2", "C INSERT 0 1", "Z I")
	}

	// Execute with a row limit suspends the portal; the next Execute goes on.
	w.send(&pgproto3.Parse{Query: `SELECT id, name, score, data, id * 2 AS twice FROM e ORDER BY id`},
		&pgproto3.Bind{ResultFormatCodes: []int16{1, 0, 0, 0, 0}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{MaxRows: 2}, &pgproto3.Execute{MaxRows: 2}, &pgproto3.Execute{MaxRows: 2}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "1", "2",
		"T id:20/8/1 name:25/-1/0 score:701/8/0 data:17/-1/0 twice:20/8/0",
		`D "\x00\x00\x00\x00\x00\x00\x00\x01" "n1" "1.5" "\\x0102" "2"`,
		`D "\x00\x00\x00\x00\x00\x00\x00\x02" "n2" "1.5" "\\x0102" "4"`, "s",
		`D "\x00\x00\x00\x00\x00\x00\x00\x03" "n3" "1.5" "\\x0102" "6"`,
		`D "\x00\x00\x00\x00\x00\x00\x00\x04" "n4" "1.5" "\\x0102" "8"`, "s",
		`D "\x00\x00\x00\x00\x00\x00\x00\x05" "n5" "1.5" "\\x0102" "10"`, "C SELECT 5", "Z I")

	// After an error, everything up to Sync is skipped.
	w.send(&pgproto3.Parse{Query: `SELECT nope FROM e`}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: `SELECT 1`}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "E 42703 no such column: nope", "Z I")

	// Statement and portal names; Close; errors for what doesn't exist.
	w.send(&pgproto3.Parse{Name: "ins", Query: `SELECT 1`}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), `E 42P05 prepared statement "ins" already exists`, "Z I")
	w.send(&pgproto3.Close{ObjectType: 'S', Name: "ins"}, &pgproto3.Bind{PreparedStatement: "ins"}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "3", `E 26000 prepared statement "ins" does not exist`, "Z I")
	w.send(&pgproto3.Execute{Portal: "p"}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), `E 34000 portal "p" does not exist`, "Z I")

	// Empty statements.
	w.send(&pgproto3.Parse{Query: ``}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "1", "2", "n", "I", "Z I")

	// Transaction status: T inside, E after an error, I after ROLLBACK.
	w.send(&pgproto3.Query{String: `BEGIN`})
	expectScript(t, w.until('Z'), "C BEGIN", "Z T")
	w.send(&pgproto3.Query{String: `INSERT INTO e (id) VALUES (1)`})
	expectScript(t, w.until('Z'), "E 23505 UNIQUE constraint failed: e.id", "Z E")
	w.send(&pgproto3.Query{String: `SELECT 1`})
	expectScript(t, w.until('Z'), "E 25P02 current transaction is aborted, commands ignored until end of transaction block", "Z E")
	w.send(&pgproto3.Query{String: `COMMIT`})
	expectScript(t, w.until('Z'), "C ROLLBACK", "Z I")
	w.send(&pgproto3.Query{String: `COMMIT`})
	expectScript(t, w.until('Z'), "N 25P01", "C COMMIT", "Z I")

	// Multiple statements can't be prepared.
	w.send(&pgproto3.Parse{Query: `SELECT 1; SELECT 2`}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "E 42601 cannot insert multiple commands into a prepared statement", "Z I")
}

func TestSQLiteErrorsMapToSQLSTATEs(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, nil)
	w.send(&pgproto3.Query{String: `CREATE TABLE p (id INTEGER PRIMARY KEY);
		CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id), n TEXT NOT NULL, q INTEGER CHECK (q > 0))`})
	expectScript(t, w.until('Z'), "C CREATE TABLE", "C CREATE TABLE", "Z I")
	for _, tc := range []struct{ sql, code string }{
		{`INSERT INTO c (p, n, q) VALUES (99, 'x', 1)`, "23503"},
		{`INSERT INTO c (n, q) VALUES (NULL, 1)`, "23502"},
		{`INSERT INTO c (n, q) VALUES ('x', 0)`, "23514"},
		{`SELECT * FROM missing`, "42P01"},
		{`SELECT missing FROM c`, "42703"},
		{`SELECT nofunc(1)`, "42883"},
		{`CREATE TABLE p (x)`, "42P07"},
		{`SELECT 'unterminated`, "42601"},
		{`SELECT 1 FROM`, "42601"},
	} {
		w.send(&pgproto3.Query{String: tc.sql})
		got := w.until('Z')
		if len(got) != 2 || !strings.HasPrefix(got[0], "E "+tc.code+" ") {
			t.Errorf("%s: got %q, want SQLSTATE %s", tc.sql, got, tc.code)
		}
	}
}

func TestSessionStatementsThePoolSendsAreAnswered(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, map[string]string{"application_name": "app"})
	w.send(&pgproto3.Query{String: `RESET ALL;SELECT pg_catalog.set_config('application_name','other',false);SET statement_timeout = '5s'
;SET TIME ZONE 'Europe/Paris';SHOW statement_timeout;SHOW TimeZone`})
	expectScript(t, w.until('Z'),
		"C RESET",
		"S application_name=other", "T set_config:25/-1/0", `D "other"`, "C SELECT 1",
		"C SET",
		"S TimeZone=Europe/Paris", "C SET",
		"T statement_timeout:25/-1/0", `D "5s"`, "C SHOW",
		"T timezone:25/-1/0", `D "Europe/Paris"`, "C SHOW",
		"Z I")
	w.send(&pgproto3.Query{String: `RESET ALL`})
	expectScript(t, w.until('Z'), "S application_name=app", "S TimeZone=UTC", "C RESET", "Z I")
	w.send(&pgproto3.Query{String: `SET client_encoding = 'LATIN1'`})
	expectScript(t, w.until('Z'), "E 0A000 d1 supports client_encoding UTF8 only", "Z I")
	w.send(&pgproto3.Query{String: `BEGIN ISOLATION LEVEL SERIALIZABLE; SHOW transaction_isolation; COMMIT`})
	expectScript(t, w.until('Z'), "C BEGIN", "T transaction_isolation:25/-1/0", `D "serializable"`, "C SHOW", "C COMMIT", "Z I")
	w.send(&pgproto3.Parse{Name: "x", Query: `SELECT 1`}, &pgproto3.Sync{})
	w.until('Z')
	w.send(&pgproto3.Query{String: `DISCARD ALL`}, &pgproto3.Bind{PreparedStatement: "x"}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "C DISCARD ALL", "Z I")
	expectScript(t, w.until('Z'), `E 26000 prepared statement "x" does not exist`, "Z I")
}

func TestMalformedMessageEndsSessionWith08P01(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, nil)
	// A Bind whose body is cut short.
	if _, err := w.nc.Write([]byte{'B', 0, 0, 0, 6, 'x', 0}); err != nil {
		t.Fatal(err)
	}
	m, err := w.fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Code != "08P01" || e.Severity != "FATAL" {
		t.Fatalf("got %s, want FATAL 08P01", summarize(m))
	}
	if _, err := w.fe.Receive(); err == nil {
		t.Fatal("session still open after a malformed message")
	}
}

func TestReadOnlyTransactionRefusesWrites(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, nil)
	w.send(&pgproto3.Query{String: `CREATE TABLE r (id INTEGER PRIMARY KEY)`})
	w.until('Z')
	w.send(&pgproto3.Query{String: `BEGIN READ ONLY; SELECT count(*) FROM r`})
	expectScript(t, w.until('Z'), "C BEGIN", "T count(*):20/8/0", `D "0"`, "C SELECT 1", "Z T")
	w.send(&pgproto3.Query{String: `INSERT INTO r VALUES (1)`})
	expectScript(t, w.until('Z'), "E 25006 attempt to write a readonly database", "Z E")
	w.send(&pgproto3.Query{String: `ROLLBACK; INSERT INTO r VALUES (1)`})
	expectScript(t, w.until('Z'), "C ROLLBACK", "C INSERT 0 1", "Z I")
}

func TestSchemaChangeUnderAPreparedStatementIsReported(t *testing.T) {
	db := openDB(t)
	w := dialWire(t, db, nil)
	w.send(&pgproto3.Query{String: `CREATE TABLE g (a INTEGER)`})
	w.until('Z')
	w.send(&pgproto3.Parse{Name: "all", Query: `SELECT * FROM g`}, &pgproto3.Sync{})
	w.until('Z')
	w.send(&pgproto3.Query{String: `ALTER TABLE g ADD COLUMN b TEXT`})
	w.until('Z')
	w.send(&pgproto3.Bind{PreparedStatement: "all"}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expectScript(t, w.until('Z'), "2", "E 0A000 cached plan must not change result type", "Z I")
}
