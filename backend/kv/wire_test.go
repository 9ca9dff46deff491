package kv

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// frontend starts a session on ns and completes the startup, for tests that speak the protocol
// message by message.
func frontend(t *testing.T, ns *Namespace) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	nc, err := ns.Dial(testContext(t), "tcp", "kv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "kv"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m := receive(t, fe)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return fe, nc
		}
	}
}

func receive(t *testing.T, fe *pgproto3.Frontend) pgproto3.BackendMessage {
	t.Helper()
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// transcript receives messages up to ReadyForQuery and writes them down, one word each.
func transcript(t *testing.T, fe *pgproto3.Frontend) string {
	t.Helper()
	var out []string
	for {
		switch m := receive(t, fe).(type) {
		case *pgproto3.ReadyForQuery:
			return strings.Join(append(out, "Z"+string(m.TxStatus)), " ")
		case *pgproto3.DataRow:
			var vs []string
			for _, v := range m.Values {
				vs = append(vs, string(v))
			}
			out = append(out, "D("+strings.Join(vs, ",")+")")
		case *pgproto3.CommandComplete:
			out = append(out, "C("+string(m.CommandTag)+")")
		case *pgproto3.ErrorResponse:
			out = append(out, "E("+m.Code+")")
		default:
			out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3."))
		}
	}
}

func TestExecuteWithMaxRowsSuspendsAndResumesTheListing(t *testing.T) {
	ns := openNS(t)
	fe, _ := frontend(t, ns)
	fe.Send(&pgproto3.Query{String: `INSERT INTO kv (key, value) VALUES ('a', 'x'), ('b', 'x'), ('c', 'x')`})
	fe.Flush()
	if got := transcript(t, fe); got != "C(INSERT 0 3) ZI" {
		t.Fatalf("insert: %s", got)
	}
	fe.Send(&pgproto3.Parse{Name: "list", Query: `SELECT key FROM kv WHERE key LIKE $1`})
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "list"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "list", Parameters: [][]byte{[]byte("%")}})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	want := "ParseComplete ParameterDescription RowDescription BindComplete D(a) D(b) PortalSuspended D(c) C(SELECT 3) ZI"
	if got := transcript(t, fe); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAnErrorSkipsTheBatchToSync(t *testing.T) {
	fe, _ := frontend(t, openNS(t))
	fe.Send(&pgproto3.Parse{Query: `UPDATE kv SET value = 'x'`})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.Parse{Query: `SELECT key FROM kv WHERE key = 'a'`})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if got := transcript(t, fe); got != "E(0A000) ZI" {
		t.Errorf("failed batch: %s", got)
	}
	if got := transcript(t, fe); got != "ParseComplete BindComplete C(SELECT 0) ZI" {
		t.Errorf("next batch: %s", got)
	}
}

func TestASimpleQueryIsMatchedWholeBeforeAnythingRuns(t *testing.T) {
	fe, _ := frontend(t, openNS(t))
	fe.Send(&pgproto3.Query{String: `INSERT INTO kv (key, value) VALUES ('a', 'x'); DROP TABLE kv`})
	fe.Send(&pgproto3.Query{String: `SELECT key FROM kv; ; SELECT count(*) FROM kv`})
	fe.Send(&pgproto3.Query{String: ` ; -- nothing`})
	fe.Send(&pgproto3.Query{String: `SELECT key FROM kv;;`})
	fe.Flush()
	for _, want := range []string{"E(0A000) ZI", "E(0A000) ZI", "EmptyQueryResponse ZI", "RowDescription C(SELECT 0) ZI"} {
		if got := transcript(t, fe); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestAMalformedMessageEndsOnlyThatSession(t *testing.T) {
	ns := openNS(t)
	_, nc := frontend(t, ns)
	nc.Write([]byte{'?', 0, 0, 0, 4})
	fe := pgproto3.NewFrontend(nc, nc)
	if e, ok := receive(t, fe).(*pgproto3.ErrorResponse); !ok || e.Code != "08P01" || e.Severity != "FATAL" {
		t.Errorf("got %#v, want FATAL 08P01", e)
	}
	if _, err := fe.Receive(); err == nil {
		t.Error("the session went on after a malformed message")
	}
	other, _ := frontend(t, ns)
	other.Send(&pgproto3.Query{String: `SELECT key FROM kv`})
	other.Flush()
	if got := transcript(t, other); got != "RowDescription C(SELECT 0) ZI" {
		t.Errorf("another session: %s", got)
	}
}

func TestAnOversizedMessageIsRefused(t *testing.T) {
	ns := openNS(t)
	_, nc := frontend(t, ns)
	nc.Write([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	fe := pgproto3.NewFrontend(nc, nc)
	if e, ok := receive(t, fe).(*pgproto3.ErrorResponse); !ok || e.Code != "08P01" {
		t.Errorf("got %#v, want 08P01", e)
	}
}
