package e2e

// Placement and failover across separate pools (issue 7): each pool reaches the origin through
// a relay of its own RTT, the edge places the database at the nearest pool, a pin overrides
// that, and when the serving pool dies the sessions move to the next one.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/bench"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// regionPool starts `slipstream pool --region NAME` whose origin is the app database behind a
// TCP relay with the given RTT, tagged with the setting slipstream.tag=NAME so queries can tell which
// pool ran them. If udpRTT > 0, edges reach the pool through a UDP relay, which the test can
// close to cut the pool off without a goodbye; the returned address is the one edges dial.
func regionPool(t *testing.T, certs, name string, originRTT time.Duration, udpRTT time.Duration) (addr string, n *node, udp *bench.Relay) {
	t.Helper()
	return regionPoolOf(t, certs, name, directURL(), originRTT, udpRTT)
}

// regionPoolOf is regionPool for the origin at URL origin, PostgreSQL's (tagged with
// slipstream.tag) or MySQL's.
func regionPoolOf(t *testing.T, certs, name, origin string, originRTT time.Duration, udpRTT time.Duration) (addr string, n *node, udp *bench.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u, _ := url.Parse(origin)
	relay, err := bench.StartRelay(ctx, bench.RelayConfig{To: u.Host, RTT: originRTT})
	if err != nil {
		t.Fatal(err)
	}
	u.Host = relay.Addr()
	if u.Scheme == "postgres" {
		q := u.Query()
		// A setting of the origin connection's own, from its startup options: the pool gives each
		// client the application_name it sent (issue 12), so that can't tell pools apart.
		q.Set("options", "-c slipstream.tag="+name)
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // libpq's parser takes no '+' for a space
	}
	n = startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", certs, "--data-dir", t.TempDir(), "--region", name, "--origin", u.String())
	addr = n.tunnelAddr(t)
	if udpRTT > 0 {
		if udp, err = bench.StartRelay(ctx, bench.RelayConfig{To: addr, RTT: udpRTT, UDP: true}); err != nil {
			t.Fatal(err)
		}
		addr = udp.Addr()
	}
	return addr, n, udp
}

// servingPool asks the origin which pool's connection ran the query.
func servingPool(ctx context.Context, conn *pgx.Conn) (string, error) {
	var name string
	err := conn.QueryRow(ctx, "/* slipstream: cache=off */ SELECT current_setting('slipstream.tag', true)").Scan(&name)
	return name, err
}

// startEdgeTOML runs `slipstream edge` with a config file holding the pools and the app
// database (plus extra lines for its [[database]] table).
func startEdgeTOML(t *testing.T, certs string, pools [][2]string, dbLines ...string) *node {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "certs_dir = %q\n", certs)
	for _, p := range pools {
		fmt.Fprintf(&b, "[[pool]]\nname = %q\naddress = %q\n", p[0], p[1])
	}
	fmt.Fprintf(&b, "[[database]]\nname = %q\norigin = %q\n", pgtest.AppDB, directURL())
	for _, l := range dbLines {
		b.WriteString(l + "\n")
	}
	path := writeTOML(t, b.String())
	return startNode(t, "edge", "--config", path, "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", t.TempDir())
}

func TestEdgePlacesTheDatabaseAtThePoolNearestItsOriginUnlessPinned(t *testing.T) {
	t.Parallel()
	certs := makeCerts(t)
	far, _, _ := regionPool(t, certs, "far", 60*time.Millisecond, 0)
	near, _, _ := regionPool(t, certs, "near", 2*time.Millisecond, 0)
	mid, _, _ := regionPool(t, certs, "mid", 25*time.Millisecond, 0)
	pools := [][2]string{{"far", far}, {"near", near}, {"mid", mid}}

	ctx := testContext(t, 60*time.Second)
	edge := startEdgeTOML(t, certs, pools)
	conn := connect(t, ctx, edge.appURL(t))
	if got, err := servingPool(ctx, conn); err != nil || got != "near" {
		t.Errorf("unpinned: served by %q (%v), want near (2 ms from the origin, against 25 and 60); edge log:\n%s", got, err, edge.stderr.String())
	}

	pinned := startEdgeTOML(t, certs, pools, `pool_region = "far"`)
	conn = connect(t, ctx, pinned.appURL(t))
	if got, err := servingPool(ctx, conn); err != nil || got != "far" {
		t.Errorf("pool_region = far: served by %q (%v), want far", got, err)
	}
}

// nearAndBackup starts an edge with two pools, "near" (the database's: its origin 2 ms away,
// reached through a UDP relay the test can cut) and "backup" (20 ms from the origin), and
// returns the app database's URL through the edge and what kills the near pool without a
// goodbye: its link drops every packet, then its process goes.
func nearAndBackup(t *testing.T) (url string, killNear func()) {
	t.Helper()
	certs := makeCerts(t)
	nearAddr, nearNode, nearLink := regionPool(t, certs, "near", 2*time.Millisecond, 2*time.Millisecond)
	backupAddr, _, _ := regionPool(t, certs, "backup", 20*time.Millisecond, 0)
	edge := startEdgeTOML(t, certs, [][2]string{{"near", nearAddr}, {"backup", backupAddr}})
	return edge.appURL(t), func() {
		nearLink.Close()
		nearNode.stop()
	}
}

func TestKillingThePoolMovesSessionsToTheNextAndRunsNoWriteTwice(t *testing.T) {
	t.Parallel()
	url, killNear := nearAndBackup(t)

	ctx := testContext(t, 90*time.Second)
	admin := connect(t, ctx, directURL())
	table := "failover_writes"
	if _, err := admin.Exec(ctx, "DROP TABLE IF EXISTS "+table+"; CREATE TABLE "+table+" (id bigint)"); err != nil {
		t.Fatal(err)
	}

	// Clients write rows with ids of their own and read, reconnecting after any error, until
	// told to stop. acked holds the ids whose INSERT was acknowledged.
	var (
		acked       sync.Map
		nextID      atomic.Int64
		reads       [2]atomic.Int64 // successful reads before and after the kill
		cleanErrors atomic.Int64
		killed      atomic.Bool
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		unclean     = make(chan error, 100)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil {
					c, err := pgx.Connect(ctx, url)
					if err != nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					conn = c
				}
				id := nextID.Add(1)
				_, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", id)
				if err == nil {
					acked.Store(id, true)
					// Judged by when the read started: one sent before the cut may still
					// be answered by the near pool.
					after := 0
					if killed.Load() {
						after = 1
					}
					var where string
					if where, err = servingPool(ctx, conn); err == nil {
						if after == 1 && where != "backup" {
							err = fmt.Errorf("a read sent after the kill ran on %q", where)
						}
						reads[after].Add(1)
					}
				}
				if err != nil {
					var pgErr interface{ SQLState() string }
					if errors.As(err, &pgErr) || conn.IsClosed() || strings.Contains(err.Error(), "unexpected EOF") ||
						strings.Contains(err.Error(), "conn closed") {
						cleanErrors.Add(1)
					} else if ctx.Err() == nil {
						select {
						case unclean <- err:
						default:
						}
					}
					conn.Close(context.Background())
					conn = nil
				}
			}
		}()
	}

	time.Sleep(2 * time.Second)
	// The near pool vanishes without a goodbye: its link drops every packet, then the process
	// goes. Sessions on it must fail cleanly; new ones must land on the backup.
	killNear()
	killed.Store(true) // reads started from now on were sent after the near pool was cut off
	deadline := time.Now().Add(20 * time.Second)
	for reads[1].Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(unclean)
	for err := range unclean {
		t.Errorf("a client got an error that is not a clean protocol error: %v", err)
	}
	if reads[0].Load() == 0 || reads[1].Load() < 20 {
		t.Fatalf("reads before the kill %d, after %d; want some before and at least 20 after within 20s", reads[0].Load(), reads[1].Load())
	}

	rows, err := admin.Query(ctx, "SELECT id, count(*) FROM "+table+" GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	present := map[int64]bool{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		if n > 1 {
			t.Errorf("row %d was written %d times", id, n)
		}
		present[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !present[k.(int64)] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Errorf("%d acknowledged writes are missing", missing)
	}
	t.Logf("reads before the kill %d, after %d; %d rows; %d clean errors", reads[0].Load(), reads[1].Load(), len(present), cleanErrors.Load())
}

func TestAReadSentAsItsPoolDiesIsAnsweredByTheNextPool(t *testing.T) {
	t.Parallel()
	url, killNear := nearAndBackup(t)
	ctx := testContext(t, 60*time.Second)
	conn := connect(t, ctx, url)

	// pgx prepares the statement once (a named one) and then only binds and executes it: the
	// pool that takes over must be told of it by the edge.
	const q = "SELECT count(*) FROM generate_series(1, $1::int)"
	// A setting the session made, which the pool that takes over must be told of too.
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'Pacific/Auckland'"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, q, 1000).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("before the kill: %d, %v", n, err)
	}
	if where, err := servingPool(ctx, conn); err != nil || where != "near" {
		t.Fatalf("the session runs on %q (%v), want near", where, err)
	}

	// The near pool vanishes without a goodbye. The same session's next reads go to it, the
	// tunnel fails under them, and the edge sends them again over the backup pool.
	killNear()
	start := time.Now()
	if err := conn.QueryRow(ctx, q, 2000).Scan(&n); err != nil || n != 2000 {
		t.Fatalf("a read sent as its pool died: %d, %v; want it answered by the next pool", n, err)
	}
	t.Logf("answered after %v", time.Since(start))
	if where, err := servingPool(ctx, conn); err != nil || where != "backup" {
		t.Errorf("the session runs on %q (%v) after the kill, want backup", where, err)
	}
	var tz string
	if err := conn.QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz != "Pacific/Auckland" {
		t.Errorf("after the kill the session's time zone is %q (%v), want Pacific/Auckland", tz, err)
	}
	// The session goes on over the backup pool: a write, then a read of it.
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE after_failover (v int); INSERT INTO after_failover VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT v FROM after_failover").Scan(&n); err != nil || n != 7 {
		t.Errorf("reading the write made after the failover: %d, %v", n, err)
	}
}

func TestAMySQLReadSentAsItsPoolDiesIsAnsweredByTheNextPool(t *testing.T) {
	t.Parallel()
	certs := makeCerts(t)
	origin := mariaDB(t).URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
	nearAddr, nearNode, nearLink := regionPoolOf(t, certs, "near", origin, 2*time.Millisecond, 2*time.Millisecond)
	backupAddr, _, _ := regionPoolOf(t, certs, "backup", origin, 20*time.Millisecond, 0)
	edge := startNode(t, "edge", "--pool", "near="+nearAddr, "--pool", "backup="+backupAddr, "--pg-listen", "127.0.0.1:0",
		"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(),
		"--origin", origin)
	ctx := testContext(t, 60*time.Second)
	db := openMySQL(t, edge.mysqlConfigOf(t))
	db.SetMaxOpenConns(1) // one client session throughout
	table := "myfailover_" + suffix()
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { openMySQL(t, directMySQLConfig(t)).Exec("DROP TABLE " + table) })
	if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	// The session chooses its database and character set, which the next pool side is told.
	for _, q := range []string{"USE " + mytest.AppDB, "SET NAMES utf8mb4 COLLATE utf8mb4_bin", "SET time_zone = '+05:00'"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	read := "/* slipstream: cache=off */ SELECT COUNT(*) FROM " + table
	var n int
	if err := db.QueryRowContext(ctx, read).Scan(&n); err != nil || n != 3 {
		t.Fatalf("before the kill: %d, %v", n, err)
	}
	// And a server-side prepared statement, which the next pool side must know by its id.
	stmt, err := db.PrepareContext(ctx, "/* slipstream: cache=off */ SELECT COUNT(*) FROM "+table+" WHERE id >= ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if err := stmt.QueryRowContext(ctx, 2).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the prepared read before the kill: %d, %v", n, err)
	}

	// The near pool vanishes without a goodbye; the session's next read, an execute of the
	// prepared statement, goes to it, the tunnel fails under it, and the edge sends it again
	// over the backup pool.
	nearLink.Close()
	nearNode.stop()
	start := time.Now()
	if err := stmt.QueryRowContext(ctx, 3).Scan(&n); err != nil || n != 1 {
		t.Fatalf("a prepared read sent as its pool died: %d, %v; want it answered by the next pool", n, err)
	}
	t.Logf("answered after %v", time.Since(start))
	if err := db.QueryRowContext(ctx, read).Scan(&n); err != nil || n != 3 {
		t.Fatalf("a read after the move: %d, %v", n, err)
	}
	// The same session goes on over the backup pool: a write, then a read of it.
	if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, read).Scan(&n); err != nil || n != 4 {
		t.Errorf("reading the write made after the failover: %d, %v", n, err)
	}
	var coll, cur, tz string
	if err := db.QueryRowContext(ctx, "/* slipstream: cache=off */ SELECT @@collation_connection, DATABASE(), @@time_zone").Scan(&coll, &cur, &tz); err != nil ||
		coll != "utf8mb4_bin" || cur != mytest.AppDB || tz != "+05:00" {
		t.Errorf("after the failover the session has collation %q, database %q and time zone %q (%v), want utf8mb4_bin, %s and +05:00",
			coll, cur, tz, err, mytest.AppDB)
	}
}
