package mysqlpool

import (
	"database/sql"
	"encoding/binary"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// setGlobal sets a global variable of the package's MariaDB as root until the test ends.
func setGlobal(t *testing.T, name, value, restore string) *sql.DB {
	t.Helper()
	root, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Exec("SET GLOBAL " + name + " = " + value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		root.Exec("SET GLOBAL " + name + " = " + restore)
		root.Close()
	})
	return root
}

// TestClientsThatPrepareAndCloseInALoopNeverMeetTooManyStatements holds the pool to what a
// direct connection does: a statement a client closes is closed on the origin once no client
// uses it, so clients preparing and closing statements of ever new texts in a loop stay under
// a low max_prepared_stmt_count (error 1461 direct only past it), and nothing accumulates: a
// connection frees what was closed at its next command, so at the end it holds at most what
// each client closed after that connection's last command: the one statement a client has open
// at a time (prepared there, or moved there from another connection), one per client.
func TestClientsThatPrepareAndCloseInALoopNeverMeetTooManyStatements(t *testing.T) {
	root := setGlobal(t, "max_prepared_stmt_count", "12", "16382")
	// The count is the server's: the connections of earlier tests' pools, closed as those tests
	// ended, may still hold theirs for a moment.
	if n := stmtCountWithin(t, root, 0, 10*time.Second); n != 0 {
		t.Fatalf("the origin still holds %d prepared statements of earlier tests", n)
	}
	p := newPool(t, Config{MaxConns: 2})
	var wg sync.WaitGroup
	for c := range 3 {
		cl := open(t, p, clientCaps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				pk, err := cl.roundTrip(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT "+strconv.Itoa(c*1000+i)+" + ?")))
				if err != nil {
					t.Error(err)
					return
				}
				if pk[0][0] == hdrERR {
					t.Errorf("client %d, prepare %d: %s", c, i, errText(pk[0]))
					return
				}
				id := binary.LittleEndian.Uint32(pk[0][1:])
				if pk := cl.mustRT(executePacket(id, 0, true, "1")); pk[0][0] == hdrERR {
					t.Errorf("client %d, execute %d: %s", c, i, errText(pk[0]))
					return
				}
				if _, err := cl.roundTrip(cmdPacket(mysql.COM_STMT_CLOSE, binary.LittleEndian.AppendUint32(nil, id))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := stmtCount(t, root); n > 3*2 {
		t.Errorf("the origin holds %d prepared statements after every client closed its own, want at most 6 (one per client and connection)", n)
	}
}

// stmtCount is the number of prepared statements the whole server holds.
func stmtCount(t *testing.T, root *sql.DB) int {
	t.Helper()
	var name string
	var n int
	if err := root.QueryRow("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stmtCountWithin asks the server until it holds at most want prepared statements, or the time
// is up, and returns the last count.
func stmtCountWithin(t *testing.T, root *sql.DB, want int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := stmtCount(t, root)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatementsInUseStayUnderTheOriginsLimit: statements clients keep open are prepared on the
// origin connections as they are used, each connection holding its share of
// max_prepared_stmt_count, so a client with more open statements than the origin allows one
// connection still executes all of them.
func TestStatementsInUseStayUnderTheOriginsLimit(t *testing.T) {
	setGlobal(t, "max_prepared_stmt_count", "9", "16382")
	p := newPool(t, Config{MaxConns: 2})
	a := open(t, p, clientCaps)
	b := open(t, p, clientCaps)
	var ids []uint32
	for i := range 6 {
		ids = append(ids, a.prepare("SELECT "+strconv.Itoa(i)+" + ?"))
	}
	b.prepare("SELECT 'other'")
	for round := range 3 {
		for i, id := range ids {
			pk := a.mustRT(executePacket(id, 0, true, "1"))
			if pk[0][0] == hdrERR {
				t.Fatalf("round %d, statement %d: %s", round, i, errText(pk[0]))
			}
		}
	}
	if got := p.stmts.limit.Load(); got != 3 {
		t.Errorf("per-connection limit %d, want 3 (9 / 2 connections, less one)", got)
	}
}

// TestShowWarningsFirstAnswersAboutNothing: SHOW WARNINGS as a session's first statement, on a
// connection another session's failed statement just left, lists nothing, as on a fresh
// direct connection.
func TestShowWarningsFirstAnswersAboutNothing(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := open(t, p, clientCaps)
	if pk := a.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELEC 1"))); pk[0][0] != hdrERR {
		t.Fatal("SELEC 1 did not fail")
	}
	a.s.Close()
	b := open(t, p, clientCaps)
	if rows := b.rows("SHOW WARNINGS"); len(rows) != 0 {
		t.Errorf("SHOW WARNINGS of a new session: %q, want nothing", rows)
	}
	b.s.Close()
	// A statement that uses no table leaves the diagnostics in place: after one, they are
	// still the other session's (found by FuzzMySQLAnswersAsMariaDB).
	a = open(t, p, clientCaps)
	a.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELEC 1")))
	a.s.Close()
	c := open(t, p, clientCaps)
	c.rows("SELECT @fz")
	if rows := c.rows("SHOW WARNINGS"); len(rows) != 0 {
		t.Errorf("SHOW WARNINGS after SELECT @fz: %q, want nothing", rows)
	}
	// The session's own warnings stay its own.
	c.rows("SELECT CAST('1x' AS SIGNED)")
	if rows := c.rows("SHOW WARNINGS"); len(rows) != 1 {
		t.Errorf("SHOW WARNINGS after the session's own warning: %q, want it", rows)
	}
}
