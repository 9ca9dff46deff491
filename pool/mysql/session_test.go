package mysqlpool

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestProfileComesFromTheOriginHandshake(t *testing.T) {
	p := newPool(t, Config{})
	prof, err := p.Origin().Profile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if prof.Parameters["protocol"] != "mysql" || prof.Parameters["server_version"] == "" ||
		prof.Parameters["capabilities"] == "" || prof.Parameters["collation"] == "0" {
		t.Errorf("profile = %v", prof.Parameters)
	}
	t.Logf("profile: %v", prof.Parameters)
}

func TestQueriesAnswerInTheNegotiatedFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps uint32
	}{
		{"with EOF packets", clientCaps},
		{"with CLIENT_DEPRECATE_EOF", clientCaps | mysql.CLIENT_DEPRECATE_EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, Config{MaxConns: 2})
			c := open(t, p, tc.caps)
			if got := c.rows("SELECT 1, 'a' UNION ALL SELECT 2, NULL"); len(got) != 2 || got[1][1] != "NULL" {
				t.Errorf("rows = %q", got)
			}
			pk := c.exec("SELECT 1; SELECT 2, 3; DO 1")
			if len(pk) == 0 {
				t.Fatal("no answer")
			}
			if pk := c.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELECT * FROM nope"))); pk[0][0] != hdrERR {
				t.Errorf("want ERR, got %q", pk)
			}
			if got := c.value("SELECT DATABASE()"); got != "app" {
				t.Errorf("database = %q", got)
			}
		})
	}
}

func TestOutsideTransactionsSessionsShareOneConnection(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 200 * time.Millisecond})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	idA := a.value("SELECT CONNECTION_ID()")
	idB := b.value("SELECT CONNECTION_ID()")
	if idA != idB {
		t.Errorf("two sessions on a one-connection pool ran on %s and %s", idA, idB)
	}
	a.exec("BEGIN")
	if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("inside a's transaction b got %v, want ErrQueueTimeout", err)
	}
	a.exec("COMMIT")
	if got := b.value("SELECT 1"); got != "1" {
		t.Errorf("after COMMIT b got %q", got)
	}
	// autocommit off holds the connection too.
	a.exec("SET autocommit = 0")
	if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("with a's autocommit off b got %v, want ErrQueueTimeout", err)
	}
	a.exec("SET autocommit = 1")
	b.value("SELECT 1")
}

func TestSessionStateDoesNotLeakAndFollowsTheSession(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	defSQLMode := b.value("SELECT @@session.sql_mode")
	a.exec("SET @@session.sql_mode = 'ANSI_QUOTES', time_zone = '+03:00', @x = 42")
	a.exec("SET NAMES latin1")
	a.exec("SELECT @y := CONCAT('v', 7)")
	a.exec("CREATE TABLE IF NOT EXISTS t_state (i int)")
	a.exec("USE information_schema")
	if got := b.rows("SELECT @@session.sql_mode, @@session.time_zone, @x, @y, @@character_set_client, DATABASE()"); got[0][0] != defSQLMode ||
		got[0][1] != "SYSTEM" || got[0][2] != "NULL" || got[0][3] != "NULL" || got[0][5] != "app" {
		t.Errorf("b sees %q, want defaults", got)
	}
	if got := a.rows("SELECT @@session.sql_mode, @@session.time_zone, @x, @y, @@character_set_client, DATABASE()"); got[0][0] != "ANSI_QUOTES" ||
		got[0][1] != "+03:00" || got[0][2] != "42" || got[0][3] != "v7" || got[0][4] != "latin1" || got[0][5] != "information_schema" {
		t.Errorf("a sees %q, want its own settings back", got)
	}
	// COM_RESET_CONNECTION with no lease: the state goes, the database stays.
	if pk := a.mustRT(cmdPacket(mysql.COM_RESET_CONNECTION, nil)); pk[0][0] != hdrOK {
		t.Fatalf("reset: %q", pk)
	}
	if got := a.rows("SELECT @x, @@session.time_zone, DATABASE()"); got[0][0] != "NULL" || got[0][1] != "SYSTEM" {
		t.Errorf("after COM_RESET_CONNECTION a sees %q", got)
	}
}

func TestPinnedSessionKeepsItsConnectionAndItIsResetAfter(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 200 * time.Millisecond})
	a := open(t, p, clientCaps)
	a.exec("CREATE TEMPORARY TABLE tmp_pin (i int)")
	b := open(t, p, clientCaps)
	if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("b got %v while a is pinned, want ErrQueueTimeout", err)
	}
	a.exec("INSERT INTO tmp_pin VALUES (1)")
	a.s.Close()
	if pk := b.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELECT * FROM tmp_pin"))); pk[0][0] != hdrERR {
		t.Errorf("b sees a's temporary table: %q", pk)
	}
}

func TestPreparedStatementsMoveBetweenConnections(t *testing.T) {
	for _, caps := range []uint32{clientCaps, clientCaps | mysql.CLIENT_DEPRECATE_EOF} {
		p := newPool(t, Config{MaxConns: 2})
		a := open(t, p, caps)
		id := a.prepare("SELECT CONNECTION_ID(), ?")
		if id != 1 {
			t.Errorf("first statement id = %d, want 1", id)
		}
		first := binaryRows(t, a.mustRT(executePacket(id, 0, true, "x")), caps)
		// Hold the first connection with another session, so a gets the second.
		b := open(t, p, caps)
		b.exec("BEGIN")
		// new-params-bound 0: the pool sends the types again on the new connection.
		second := binaryRows(t, a.mustRT(executePacket(id, 0, false, "y")), caps)
		if len(first) != 1 || len(second) != 1 || first[0] == second[0] {
			t.Errorf("executions ran on %v then %v, want two connections", first, second)
		}
		b.exec("COMMIT")
		// Long data is replayed ahead of the execute.
		id2 := a.prepare("SELECT ?")
		long := cmdPacket(mysql.COM_STMT_SEND_LONG_DATA, append(binary.LittleEndian.AppendUint32(nil, id2), 0, 0, 'h', 'i'))
		exec := cmdPacket(mysql.COM_STMT_EXECUTE, append(binary.LittleEndian.AppendUint32(nil, id2),
			0, 1, 0, 0, 0, 0, 1, mysql.MYSQL_TYPE_VAR_STRING, 0)) // no value: it came as long data
		pk := a.mustRT(append(long, exec...))
		if pk[0][0] == hdrERR {
			t.Fatalf("execute after long data: %s", errText(pk[0]))
		}
		if row := pk[len(pk)-2]; !bytes.HasSuffix(row, []byte("\x02hi")) {
			t.Errorf("long data row = %q, want hi", row)
		}
		// MariaDB's id -1: the statement prepared last.
		if pk := a.mustRT(executePacket(0xffffffff, 0, true, "q")); pk[0][0] == hdrERR {
			t.Errorf("execute -1: %s", errText(pk[0]))
		}
		// Another session's state resets the connection, which drops its statements: a's
		// statement is prepared again.
		b.exec("SET @other = 1")
		b.value("SELECT @other")
		if got := binaryRows(t, a.mustRT(executePacket(id, 0, true, "w")), caps); len(got) != 1 {
			t.Errorf("after a reset: %v", got)
		}
		// Close, then executing is an error made up by the pool.
		a.mustRT(nil)
		if _, err := a.roundTrip(cmdPacket(mysql.COM_STMT_CLOSE, binary.LittleEndian.AppendUint32(nil, id))); err != nil {
			t.Fatal(err)
		}
		if pk := a.mustRT(executePacket(id, 0, true, "z")); pk[0][0] != hdrERR {
			t.Errorf("executing a closed statement: %q", pk)
		}
	}
}

// binaryRows returns the connection id column of a binary result set with a BIGINT first.
func binaryRows(t *testing.T, pk [][]byte, caps uint32) []uint64 {
	t.Helper()
	if pk[0][0] == hdrERR {
		t.Fatalf("execute: %s", errText(pk[0]))
	}
	n, _ := lenenc(pk[0])
	i := 1 + int(n)
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		i++
	}
	var out []uint64
	for ; i < len(pk) && pk[i][0] == 0; i++ {
		// header, null bitmap (1 byte for 2 columns), then the first value
		out = append(out, uint64(binary.LittleEndian.Uint32(pk[i][2:])))
	}
	return out
}

func TestCursorFetchKeepsTheLeaseUntilExhausted(t *testing.T) {
	for _, caps := range []uint32{clientCaps, clientCaps | mysql.CLIENT_DEPRECATE_EOF} {
		p := newPool(t, Config{MaxConns: 1, QueueTimeout: 200 * time.Millisecond})
		a, b := open(t, p, caps), open(t, p, caps)
		id := a.prepare("SELECT seq FROM seq_1_to_5")
		pk := a.mustRT(executePacket(id, mysql.CURSOR_TYPE_READ_ONLY, true))
		if pk[0][0] == hdrERR {
			t.Fatal(errText(pk[0]))
		}
		if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
			t.Fatalf("b got %v while a's cursor is open, want ErrQueueTimeout", err)
		}
		rows := 0
		for range 10 {
			pk := a.mustRT(cmdPacket(mysql.COM_STMT_FETCH, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, id), 2)))
			if pk[0][0] == hdrERR {
				t.Fatal(errText(pk[0]))
			}
			rows += len(pk) - 1
			st, _ := okStatus(pk[len(pk)-1])
			if st&statusLastRowSent != 0 {
				break
			}
		}
		if rows != 5 {
			t.Errorf("fetched %d rows, want 5", rows)
		}
		if got := b.value("SELECT 1"); got != "1" {
			t.Errorf("after the cursor b got %q", got)
		}
	}
}

func TestOriginKilledMidCommandEndsOnlyThatSession(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a, killer := open(t, p, clientCaps), open(t, p, clientCaps)
	id := a.value("SELECT CONNECTION_ID()")
	ctx := context.Background()
	if err := a.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT SLEEP(10)"))); err != nil {
		t.Fatal(err)
	}
	killer.exec("KILL CONNECTION " + id)
	var err error
	for err == nil && a.s.Pending() {
		_, err = a.s.Recv(ctx, nil)
	}
	if !errors.Is(err, link.ErrOriginLost) {
		t.Fatalf("Recv: %v, want ErrOriginLost", err)
	}
	if got := killer.value("SELECT 2"); got != "2" {
		t.Errorf("the other session got %q", got)
	}
}

func TestCancelKillsTheRunningQuery(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a := open(t, p, clientCaps)
	ctx := context.Background()
	if err := a.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT SLEEP(10)"))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		time.Sleep(200 * time.Millisecond)
		if err := a.s.Cancel(ctx); err != nil {
			t.Error(err)
		}
	}()
	var buf []byte
	for a.s.Pending() {
		var err error
		if buf, err = a.s.Recv(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the query ran for %v after Cancel", time.Since(start))
	}
	if got := a.value("SELECT 3"); got != "3" {
		t.Errorf("after cancel: %q", got)
	}
}

func TestQuitTerminates(t *testing.T) {
	p := newPool(t, Config{})
	a := open(t, p, clientCaps)
	if err := a.s.Send(context.Background(), cmdPacket(mysql.COM_QUIT, nil)); !errors.Is(err, link.ErrTerminated) {
		t.Errorf("COM_QUIT: %v", err)
	}
}

func TestStatementsStayInTheDatabaseTheyWerePreparedIn(t *testing.T) {
	root, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS app2", "GRANT ALL ON app2.* TO 'app'@'%'",
		"CREATE TABLE IF NOT EXISTS app.t_db (i int)", "CREATE TABLE IF NOT EXISTS app2.t_db (i int)",
		"DELETE FROM app.t_db", "DELETE FROM app2.t_db",
		"INSERT INTO app.t_db VALUES (1)", "INSERT INTO app2.t_db VALUES (1), (2)"} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	p := newPool(t, Config{MaxConns: 2})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	count := func(c *testClient, id uint32) uint64 {
		t.Helper()
		pk := c.mustRT(executePacket(id, 0, true))
		if pk[0][0] == hdrERR {
			t.Fatal(errText(pk[0]))
		}
		row := pk[len(pk)-2] // header, null bitmap, BIGINT
		return binary.LittleEndian.Uint64(row[2:])
	}
	ida := a.prepare("SELECT COUNT(*) FROM t_db")
	a.exec("USE app2")
	if n := count(a, ida); n != 1 {
		t.Errorf("a's statement counts %d rows, want app's 1", n)
	}
	b.exec("BEGIN") // a moves to the other connection, where the statement is prepared again
	if n := count(a, ida); n != 1 {
		t.Errorf("prepared again elsewhere, a's statement counts %d rows, want app's 1", n)
	}
	if got := a.value("SELECT DATABASE()"); got != "app2" {
		t.Errorf("a is in %q, want app2", got)
	}
	b.exec("COMMIT")
	b.exec("USE app2")
	idb := b.prepare("SELECT COUNT(*) FROM t_db")
	if n := count(b, idb); n != 2 {
		t.Errorf("b's statement counts %d rows, want app2's 2", n)
	}
	if n := count(a, ida); n != 1 {
		t.Errorf("after b prepared the same text in app2, a's counts %d, want 1", n)
	}
}

func TestAConnectionKeepsAtMost256StatementsAndPreparesEvictedOnesAgain(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := open(t, p, clientCaps)
	var ids []uint32
	for i := range 300 {
		ids = append(ids, a.prepare("SELECT "+strconv.Itoa(i)+" + ?"))
	}
	c := a.s.leased()
	if c == nil {
		p.slots.EachIdle(func(idle *originConn) { c = idle })
	}
	if n := len(c.prepared); n > maxPrepared {
		t.Errorf("the connection holds %d statements, want at most %d", n, maxPrepared)
	}
	pk := a.mustRT(executePacket(ids[0], 0, true, "1"))
	if pk[0][0] == hdrERR {
		t.Fatalf("executing an evicted statement: %s", errText(pk[0]))
	}
	if got := a.value("SELECT COUNT(*) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT' AND CAST(VARIABLE_VALUE AS UNSIGNED) <= 257"); got != "1" {
		t.Errorf("the origin holds more statements than the pool kept")
	}
}

func TestARefusedLeaseTellsTheClientTheOriginsMeaning(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code uint16
	}{
		{link.NewOriginError(link.OriginLoginRefused, "Access denied for user 'app'", "error 1045", nil), 1045},
		{link.NewOriginError(link.OriginNoDatabase, "Unknown database 'x'", "error 1049", nil), 1049},
		{link.NewOriginError(link.OriginUnreachable, "cannot connect to 127.0.0.1:1: connection refused", "", nil), 1105},
		{errors.New("boom"), 1105},
	} {
		if e := originDownError(fmt.Errorf("mysqlpool: connect to origin: %w", tt.err)); e.Code != tt.code {
			t.Errorf("%v: error %d, want %d", tt.err, e.Code, tt.code)
		}
	}
}
