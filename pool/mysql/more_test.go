package mysqlpool

import (
	"context"
	"database/sql"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	_ "github.com/go-sql-driver/mysql"
)

func TestPacketsOfSixteenMebibytesAndMoreCrossBothWays(t *testing.T) {
	root, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Exec("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024"); err != nil {
		t.Fatal(err)
	}
	p := newPool(t, Config{MaxConns: 1})
	for _, caps := range []uint32{clientCaps, clientCaps | mysql.CLIENT_DEPRECATE_EOF} {
		c := open(t, p, caps)
		// The server's answer: one row of 20 MB spans two packets.
		pk := c.exec("SELECT REPEAT('x', 20000000), 1")
		size := 0
		for _, x := range pk {
			size += len(x)
		}
		if size < 20000000 || pk[len(pk)-1][0] != hdrEOF {
			t.Errorf("got %d bytes in %d packets", size, len(pk))
		}
		// The client's command: 17 MB of query text in two packets.
		q := "SELECT LENGTH('" + strings.Repeat("y", 17<<20) + "')"
		payload := append([]byte{mysql.COM_QUERY}, q...)
		frames := packet(0, payload[:maxPayload])
		frames = append(frames, packet(1, payload[maxPayload:])...)
		pk, err := c.roundTrip(frames)
		if err != nil {
			t.Fatal(err)
		}
		if got := textRows(t, pk, c.s.deprecateEOF); got[0][0] != strconv.Itoa(17<<20) {
			t.Errorf("LENGTH = %q", got)
		}
	}
}

func TestFieldListAndStatistics(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps)
	c.exec("CREATE TABLE IF NOT EXISTS t_fields (a int, b text)")
	pk := c.mustRT(cmdPacket(mysql.COM_FIELD_LIST, []byte("t_fields\x00")))
	if len(pk) != 3 || pk[2][0] != hdrEOF {
		t.Errorf("field list: %d packets", len(pk))
	}
	pk = c.mustRT(cmdPacket(mysql.COM_STATISTICS, nil))
	if len(pk) != 1 || !strings.HasPrefix(string(pk[0]), "Uptime") {
		t.Errorf("statistics: %q", pk)
	}
	if pk := c.mustRT(cmdPacket(mysql.COM_PING, nil)); pk[0][0] != hdrOK {
		t.Errorf("ping: %q", pk)
	}
}

func TestLoadDataLocalIsRefusedUnlessAllowed(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps|mysql.CLIENT_LOCAL_FILES)
	c.exec("CREATE TABLE IF NOT EXISTS t_load (a int)")
	c.exec("DELETE FROM t_load") // -count=N runs against one origin
	pk := c.mustRT(cmdPacket(mysql.COM_QUERY, []byte("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t_load")))
	if pk[0][0] != hdrERR {
		t.Fatalf("LOAD DATA LOCAL: %q, want an ERR", pk)
	}
	t.Logf("refused with %s", errText(pk[0]))

	p = newPool(t, Config{MaxConns: 1, AllowLoadLocal: true})
	c = open(t, p, clientCaps|mysql.CLIENT_LOCAL_FILES)
	ctx := context.Background()
	if err := c.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t_load"))); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	var err error
	for c.s.Pending() {
		if buf, err = c.s.Recv(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if len(buf) < 5 || buf[4] != hdrInfile || buf[3] != 1 {
		t.Fatalf("want the origin's file request, got %q", buf)
	}
	if err := c.s.Send(ctx, append(packet(2, []byte("7\n8\n")), packet(3, nil)...)); err != nil {
		t.Fatal(err)
	}
	buf = buf[:0]
	for c.s.Pending() {
		if buf, err = c.s.Recv(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if len(buf) < 5 || buf[4] != hdrOK || buf[3] != 4 {
		t.Fatalf("after the file: %q", buf)
	}
	if got := c.value("SELECT SUM(a) FROM t_load"); got != "15" {
		t.Errorf("loaded sum = %q", got)
	}
}

func TestResetConnectionInsideATransactionRollsBackAndReleases(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: time.Second})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	a.exec("CREATE TABLE IF NOT EXISTS t_reset (a int)")
	a.exec("BEGIN")
	a.exec("INSERT INTO t_reset VALUES (1)")
	a.exec("SET @x = 5")
	if pk := a.mustRT(cmdPacket(mysql.COM_RESET_CONNECTION, nil)); pk[0][0] != hdrOK {
		t.Fatalf("reset: %q", pk)
	}
	if got := b.value("SELECT COUNT(*) FROM t_reset"); got != "0" {
		t.Errorf("after a's reset b counts %s rows", got)
	}
	if got := a.value("SELECT @x"); got != "NULL" {
		t.Errorf("after reset @x = %s", got)
	}
}

func TestClosingMidTransactionDropsTheConnection(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := open(t, p, clientCaps)
	a.exec("CREATE TABLE IF NOT EXISTS t_close (a int)")
	a.exec("BEGIN")
	a.exec("INSERT INTO t_close VALUES (1)")
	a.s.Close()
	if s := p.Stats(); s.InUse != 0 || s.Idle != 0 {
		t.Errorf("after closing mid-transaction: %+v, want the connection gone", s)
	}
	b := open(t, p, clientCaps)
	if got := b.value("SELECT COUNT(*) FROM t_close"); got != "0" {
		t.Errorf("b counts %s rows", got)
	}
}

func TestGetLockPinsAndTheLockIsFreedAfter(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	a.value("SELECT GET_LOCK('slip', 0)")
	idA := a.value("SELECT CONNECTION_ID()")
	b.exec("BEGIN") // b takes the other connection
	if got := b.value("SELECT IS_USED_LOCK('slip')"); got != idA {
		t.Errorf("lock held by %s, want a's connection %s", got, idA)
	}
	b.exec("COMMIT")
	a.s.Close()
	if got := b.value("SELECT IS_FREE_LOCK('slip')"); got != "1" {
		t.Errorf("after a closed, IS_FREE_LOCK = %s", got)
	}
}

func TestIdleAndOldConnectionsAreClosed(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2, IdleTimeout: 200 * time.Millisecond})
	c := open(t, p, clientCaps)
	c.value("SELECT 1")
	if s := p.Stats(); s.Idle != 1 {
		t.Fatalf("stats %+v, want one idle", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Idle != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s := p.Stats(); s.Idle != 0 {
		t.Errorf("stats %+v after the idle timeout", s)
	}

	p = newPool(t, Config{MaxConns: 2, MaxLifetime: time.Millisecond})
	c = open(t, p, clientCaps)
	first := c.value("SELECT CONNECTION_ID()")
	time.Sleep(5 * time.Millisecond)
	if second := c.value("SELECT CONNECTION_ID()"); second == first {
		t.Errorf("a connection past its lifetime served again")
	}
}

func TestUnknownCommandsGetRealErrors(t *testing.T) {
	p := newPool(t, Config{})
	c := open(t, p, clientCaps)
	for _, code := range []byte{mysql.COM_BINLOG_DUMP, mysql.COM_REGISTER_SLAVE} {
		pk := c.mustRT(cmdPacket(code, []byte{0, 0}))
		if len(pk) != 1 || pk[0][0] != hdrERR || pk[0][3] != '#' {
			t.Errorf("command %d: %q", code, pk)
		}
	}
	if pk := c.mustRT(cmdPacket(mysql.COM_STMT_FETCH, binary.LittleEndian.AppendUint32(nil, 99))); pk[0][0] != hdrERR {
		t.Errorf("fetch of an unknown statement: %q", pk)
	}
}

func TestAnIdleConnectionTheOriginClosedIsReplacedUnseen(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a, killer := open(t, p, clientCaps), open(t, p, clientCaps)
	killer.exec("BEGIN") // the killer holds one connection, a gets the other
	id := a.value("SELECT CONNECTION_ID()")
	killer.exec("KILL CONNECTION " + id)
	killer.exec("COMMIT")
	// At once: the connection sat idle for well under a second.
	if got := a.value("SELECT CONNECTION_ID()"); got == id {
		t.Errorf("a ran on the killed connection")
	}
}

func TestChangeUserStartsAFreshSessionInItsDatabase(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps|mysql.CLIENT_DEPRECATE_EOF)
	c.exec("CREATE TABLE IF NOT EXISTS t_change (a int)")
	c.exec("SET @x = 'before', time_zone = '+01:00'")
	c.exec("USE information_schema")
	c.exec("BEGIN")
	c.exec("INSERT INTO app.t_change VALUES (1)")
	// user, auth data (length-prefixed), database, collation 8 (latin1_swedish_ci)
	body := append([]byte("app\x00\x03abc"), "app\x00\x08\x00mysql_native_password\x00"...)
	if pk := c.mustRT(cmdPacket(mysql.COM_CHANGE_USER, body)); len(pk) != 1 || pk[0][0] != hdrOK {
		t.Fatalf("COM_CHANGE_USER: %q", pk)
	}
	got := c.rows("SELECT @x, @@time_zone, DATABASE(), @@character_set_client, (SELECT COUNT(*) FROM t_change)")
	if want := []string{"NULL", "SYSTEM", "app", "latin1", "0"}; strings.Join(got[0], ",") != strings.Join(want, ",") {
		t.Errorf("after COM_CHANGE_USER: %q, want %q", got[0], want)
	}
}

func TestAClosingPoolAnswersServerShutdown(t *testing.T) {
	p := newPool(t, Config{})
	c := open(t, p, clientCaps)
	p.Close()
	pk := c.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1")))
	if len(pk) != 1 || !strings.HasPrefix(errText(pk[0]), "1053 ") {
		t.Errorf("got %q, want ERR 1053", pk)
	}
}

func TestWithoutResetSessionsThatSetStateArePinnedAndTheirConnectionClosed(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	p.noReset.Store(true)
	a := open(t, p, clientCaps)
	a.exec("SET @x = 1")
	if a.s.pinned != "no_reset" {
		t.Fatalf("pinned = %q, want no_reset", a.s.pinned)
	}
	a.s.Close()
	if s := p.Stats(); s.Idle+s.InUse != 0 {
		t.Errorf("after the pinned session: %+v, want its connection closed", s)
	}
	b := open(t, p, clientCaps)
	if got := b.value("SELECT @x"); got != "NULL" {
		t.Errorf("b sees @x = %s", got)
	}
}

func TestCloseWakesARecvBlockedOnTheOrigin(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps)
	ctx := context.Background()
	if err := c.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT SLEEP(5)"))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.s.Recv(ctx, nil)
		done <- err
	}()
	for {
		c.s.mu.Lock()
		reading := c.s.reading
		c.s.mu.Unlock()
		if reading {
			break
		}
		runtimeGosched()
	}
	start := time.Now()
	c.s.Close()
	if err := <-done; err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Recv returned %v after %v", err, time.Since(start))
	}
	// The connection, mid-query, was not handed on.
	b := open(t, p, clientCaps)
	if got := b.value("SELECT 1"); got != "1" {
		t.Errorf("next session got %q", got)
	}
}

func TestALargeUserVariablePinsInsteadOfBeingReplayed(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a := open(t, p, clientCaps)
	a.exec("SET @big = REPEAT('b', 100000)")
	if a.s.pinned != "user_variables" {
		t.Errorf("pinned = %q, want user_variables", a.s.pinned)
	}
	if got := a.value("SELECT LENGTH(@big)"); got != "100000" {
		t.Errorf("LENGTH(@big) = %s", got)
	}
}

func TestSetOptionTurnsMultiStatementsOnAndOff(t *testing.T) {
	for _, caps := range []uint32{clientCaps &^ mysql.CLIENT_MULTI_STATEMENTS, clientCaps&^mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_DEPRECATE_EOF} {
		p := newPool(t, Config{MaxConns: 2})
		c := open(t, p, caps)
		multi := cmdPacket(mysql.COM_QUERY, []byte("SELECT 1; SELECT 2"))
		if pk := c.mustRT(multi); pk[0][0] != hdrERR {
			t.Fatalf("multi-statements before COM_SET_OPTION: %q", pk)
		}
		made := c.mustRT(cmdPacket(mysql.COM_SET_OPTION, []byte{0, 0})) // on, no lease: made up
		if pk := c.mustRT(multi); pk[0][0] == hdrERR {
			t.Fatalf("multi-statements after COM_SET_OPTION on: %s", errText(pk[0]))
		}
		c.exec("BEGIN")
		origin := c.mustRT(cmdPacket(mysql.COM_SET_OPTION, []byte{1, 0})) // off, held: the origin's
		if len(made) != 1 || len(origin) != 1 || len(made[0]) != len(origin[0]) || made[0][0] != origin[0][0] {
			t.Errorf("made up %q, the origin answered %q", made, origin)
		}
		if pk := c.mustRT(multi); pk[0][0] != hdrERR {
			t.Errorf("multi-statements after COM_SET_OPTION off: %q", pk)
		}
		c.exec("COMMIT")
		if pk := c.mustRT(multi); pk[0][0] != hdrERR {
			t.Errorf("multi-statements after COM_SET_OPTION off, on another lease: %q", pk)
		}
	}
}
