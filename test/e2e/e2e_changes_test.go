package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// streamUp reads slipstream_change_stream_up of database db.
func streamUp(t *testing.T, inst *instance, db string) float64 {
	v, _ := metricValue(inst.metrics(t), "slipstream_change_stream_up", `db="`+db+`"`)
	return v
}

// waitStreamUp waits until db's change stream is current.
func waitStreamUp(t *testing.T, ctx context.Context, inst *instance, db string) {
	t.Helper()
	if err := eventually(ctx, func() error {
		if streamUp(t, inst, db) != 1 {
			return fmt.Errorf("change stream of %s not up; stderr:\n%s", db, inst.stderr.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// streamDatabase makes a database of the test's own with a publication FOR ALL TABLES (a
// publication of the shared app database would make UPDATE refuse the other tests' tables
// without a primary key), and returns a superuser's URL of it (a superuser has REPLICATION)
// and a connection to it. The database goes when the test ends, after its cleanups.
func streamDatabase(t *testing.T, ctx context.Context) (string, *pgx.Conn) {
	t.Helper()
	name := "cs_" + suffix()
	root := connect(t, ctx, srv.AdminURL())
	if _, err := root.Exec(ctx, "create database "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec(context.Background(), "drop database "+name+" with (force)") })
	origin := srv.URL(pgtest.AdminUser, pgtest.AdminPassword, name)
	admin := connect(t, ctx, origin)
	if _, err := admin.Exec(ctx, "create publication slipstream for all tables"); err != nil {
		t.Fatal(err)
	}
	return origin, admin
}

// waitStreamDown waits until db's change stream is seen lost: a write committed between the
// connection's end and that moment is within the stream's freshness bound, not after it.
func waitStreamDown(t *testing.T, ctx context.Context, inst *instance, db string) {
	t.Helper()
	if err := eventually(ctx, func() error {
		if streamUp(t, inst, db) != 0 {
			return fmt.Errorf("change stream of %s still up", db)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// streamPostgreSQL makes a database of the test's own (streamDatabase) with a table of one row
// (id 1, v 0), and starts a serve whose database app (max_age 1h) is invalidated from its
// logical replication stream through a slot of the test's own, with more [database.stream]
// settings; the slot is dropped when the test ends. It returns serve, a connection to the
// database, the table and the slot.
func streamPostgreSQL(t *testing.T, ctx context.Context, stream string) (*instance, *pgx.Conn, string, string) {
	t.Helper()
	sfx := suffix()
	table, slot := "cs_"+sfx, "slipstream_test_"+sfx
	origin, admin := streamDatabase(t, ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	inst := runServe(t, []string{"--config", writeTOML(t, fmt.Sprintf(`[[database]]
name = "app"
origin = %q
[database.caching]
max_age = "1h"
[database.stream]
slot = %q
%s
`, origin, slot, stream))})
	t.Cleanup(func() {
		inst.Stop()
		changesDropSlot(t, origin, slot)
	})
	return inst, admin, table, slot
}

// TestWritesMadeStraightAtPostgreSQLInvalidateFromItsChangeStream: with a max_age of an hour,
// a write made at the origin without Slipstream is seen through a cached read as soon as the
// logical replication stream delivers it; with the stream cut (the walsender killed), no read
// is served from the cache until it is back, and then caching resumes by itself (issue 16).
func TestWritesMadeStraightAtPostgreSQLInvalidateFromItsChangeStream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	inst, admin, table, slot := streamPostgreSQL(t, ctx, "")
	waitStreamUp(t, ctx, inst, "app")
	c := connect(t, ctx, inst.plainURL())
	read := fmt.Sprintf("select v::text from %s where id = 1", table)
	for i := 1; i <= 5; i++ {
		before := readUntilCached(t, ctx, inst, c, read)
		if _, err := admin.Exec(ctx, fmt.Sprintf("update %s set v = v + 1", table)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := eventually(ctx, func() error {
			var v string
			if err := c.QueryRow(ctx, read).Scan(&v); err != nil || v == before {
				return fmt.Errorf("still %s (%v) after the write at the origin", v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("write %d seen through the cache after %v", i, time.Since(start))
	}

	// Cut the stream: until it is back, nothing is served from the cache, so a write made
	// meanwhile is never hidden; then caching resumes by itself.
	if _, err := admin.Exec(ctx, "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1", slot); err != nil {
		t.Fatal(err)
	}
	waitStreamDown(t, ctx, inst, "app")
	if _, err := admin.Exec(ctx, fmt.Sprintf("update %s set v = 100", table)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var v string
		if err := c.QueryRow(ctx, read).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "100" {
			t.Fatalf("with the change stream cut, a read answered %s, not the origin's 100", v)
		}
	}
	waitStreamUp(t, ctx, inst, "app")
	readUntilCached(t, ctx, inst, c, read)
}

// streamMariaDB makes a user of the test's own on my that may read the binlog and a table
// with one row (id 1, v 0), and starts a serve whose database app (max_age 1h) is invalidated
// from MariaDB's binlog; it returns serve, the table, a root connection and the user's
// connection configuration through serve.
func streamMariaDB(t *testing.T, ctx context.Context, my *mytest.Server) (*instance, string, *sql.DB, *mysql.Config) {
	t.Helper()
	sfx := suffix()
	user, table := "streamer_"+sfx, "cs_"+sfx
	root, err := sql.Open("mysql", my.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'streamer-secret'", user),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", mytest.AppDB, user),
		fmt.Sprintf("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '%s'@'%%'", user),
		fmt.Sprintf("CREATE TABLE %s.%s (id int primary key, v int)", mytest.AppDB, table),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 0)", mytest.AppDB, table),
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		root.Exec(fmt.Sprintf("DROP TABLE %s.%s", mytest.AppDB, table))
		root.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user))
	})
	inst := runServeFor(t, mytest.AppDB, []string{"--mysql-listen", "127.0.0.1:0", "--config", writeTOML(t, fmt.Sprintf(`[[database]]
name = "app"
origin = %q
[database.caching]
max_age = "1h"
[database.stream]
max_lag = "3s"
`, my.URL(user, "streamer-secret", mytest.AppDB)))})
	cfg := inst.mysqlConfig(t)
	cfg.User, cfg.Passwd = user, "streamer-secret"
	return inst, table, root, cfg
}

// killBinlogDumps cuts the change stream of user: KILL of its binlog dump connections.
func killBinlogDumps(t *testing.T, ctx context.Context, root *sql.DB, user string) {
	rows, err := root.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%' AND user = ?", user)
	if err != nil {
		t.Error(err)
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		t.Error("no binlog dump connection of the stream's user")
	}
	for _, id := range ids {
		root.ExecContext(ctx, fmt.Sprintf("KILL %d", id))
	}
}

// TestWritesMadeStraightAtMariaDBInvalidateFromItsBinlog is the same for MariaDB's row-based
// binlog, with a user that may read it (issue 16).
func TestWritesMadeStraightAtMariaDBInvalidateFromItsBinlog(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	inst, table, root, cfg := streamMariaDB(t, ctx, mariaDB(t))
	waitStreamUp(t, ctx, inst, "app")
	db := openMySQL(t, cfg)
	db.SetMaxOpenConns(1)
	direct := openMySQL(t, directMySQLConfig(t))
	read := fmt.Sprintf("select v from %s where id = 1", table)
	for i := 1; i <= 3; i++ {
		var before int
		hits := cacheHits(t, inst)
		for start := time.Now(); cacheHits(t, inst) == hits; {
			if err := db.QueryRowContext(ctx, read).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s never became a cache hit", read)
			}
		}
		if _, err := direct.ExecContext(ctx, fmt.Sprintf("update %s set v = v + 1", table)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := eventually(ctx, func() error {
			var v int
			if err := db.QueryRowContext(ctx, read).Scan(&v); err != nil || v == before {
				return fmt.Errorf("still %d (%v) after the write at the origin", v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("write %d seen through the cache after %v", i, time.Since(start))
	}
	// Cut the stream (KILL its dump connection): until it is back, nothing comes from the cache.
	killBinlogDumps(t, ctx, root, cfg.User)
	waitStreamDown(t, ctx, inst, "app")
	if _, err := direct.ExecContext(ctx, fmt.Sprintf("update %s set v = 100", table)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var v int
		if err := db.QueryRowContext(ctx, read).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 100 {
			t.Fatalf("with the binlog stream cut, a read answered %d, not the origin's 100", v)
		}
	}
	waitStreamUp(t, ctx, inst, "app")
}

// TestCuttingMariaDBsBinlogStreamUnderLoadServesNoStaleRead: cutUnderLoad with the binlog
// dump connection killed twice, then MariaDB restarted; it runs a MariaDB of its own (issue 16).
func TestCuttingMariaDBsBinlogStreamUnderLoadServesNoStaleRead(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 180*time.Second)
	own, err := mytest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Stop() })
	inst, table, root, cfg := streamMariaDB(t, ctx, own)
	direct := openMySQL(t, mustMySQLConfig(t, own.DSN(mytest.AppUser, mytest.AppPassword, mytest.AppDB)))
	direct.SetMaxOpenConns(1) // the UPDATE and the SELECT of one write on one connection
	read := fmt.Sprintf("select v from %s where id = 1", table)
	cutUnderLoad(t, ctx, inst, streamLoad{
		write: func(ctx context.Context) (v int, err error) {
			if _, err := direct.ExecContext(ctx, fmt.Sprintf("update %s set v = v + 1", table)); err != nil {
				return 0, err
			}
			return v, direct.QueryRowContext(ctx, read).Scan(&v)
		},
		newReader: func() func(context.Context) (int, error) {
			db := openMySQL(t, cfg)
			db.SetMaxOpenConns(1)
			return func(ctx context.Context) (v int, err error) { return v, db.QueryRowContext(ctx, read).Scan(&v) }
		},
		cut: func(i int) {
			if i < 2 {
				killBinlogDumps(t, ctx, root, cfg.User)
				return
			}
			if err := own.Restart(ctx); err != nil {
				t.Error(err)
			}
		},
	})
}

// TestAnOriginWithoutAChangeStreamFallsBackToMaxAge: the app role has no REPLICATION
// attribute: the stream is not used, a warning says why, and the database is cached by
// max_age as before (issue 16).
func TestAnOriginWithoutAChangeStreamFallsBackToMaxAge(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	c := connect(t, ctx, inst.plainURL())
	readUntilCached(t, ctx, inst, c, "select 1::text")
	if err := eventually(ctx, func() error {
		if !strings.Contains(inst.stderr.String(), "REPLICATION") {
			return fmt.Errorf("no warning naming the missing REPLICATION attribute; stderr:\n%s", inst.stderr.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if up := streamUp(t, inst, "app"); up != 0 {
		t.Errorf("slipstream_change_stream_up = %v without a stream", up)
	}
}

// TestAWriteThroughOnePoolReachesTheEdgesOfAnotherThroughTheChangeStream: two pools in front
// of one database, an edge behind each; the pools share nothing, so a write through the first
// edge reaches the second edge's cache only because the second pool hears it from the origin's
// change stream (issue 16: read-your-writes across pools).
func TestAWriteThroughOnePoolReachesTheEdgesOfAnotherThroughTheChangeStream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	sfx := suffix()
	table := "csx_" + sfx
	origin, admin := streamDatabase(t, ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	dir := makeCerts(t)
	var edges [2]*node
	var urls [2]string
	for i := range edges {
		slot := fmt.Sprintf("slipstream_test_%s_%d", sfx, i)
		toml := writeTOML(t, fmt.Sprintf("[[database]]\nname = \"app\"\norigin = %q\n[database.caching]\nmax_age = \"1h\"\n[database.stream]\nslot = %q\n", origin, slot))
		pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
			"--certs", dir, "--data-dir", t.TempDir(), "--region", fmt.Sprint("r", i), "--config", toml)
		t.Cleanup(func() {
			pool.stop()
			changesDropSlot(t, origin, slot)
		})
		if err := eventually(ctx, func() error {
			if v := pool.metric(t, "slipstream_change_stream_up", `db="app"`); v != 1 {
				return fmt.Errorf("pool %d: change stream not up", i)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		edges[i] = startNode(t, "edge", "--pool", fmt.Sprint("r", i, "=", pool.tunnelAddr(t)), "--pg-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--config", toml)
		urls[i] = edges[i].appURL(t)
	}
	writer, reader := connect(t, ctx, urls[0]), connect(t, ctx, urls[1])
	read := fmt.Sprintf("select v from %s where id = 1", table)
	for i := 1; i <= 3; i++ {
		var before int
		hits := edges[1].hits(t)
		for start := time.Now(); edges[1].hits(t) == hits; {
			if err := reader.QueryRow(ctx, read).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("the read never became a cache hit at the second edge")
			}
		}
		if _, err := writer.Exec(ctx, fmt.Sprintf("update %s set v = v + 1", table)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := eventually(ctx, func() error {
			var v int
			if err := reader.QueryRow(ctx, read).Scan(&v); err != nil || v == before {
				return fmt.Errorf("the second edge still answers %d (%v)", v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("write %d through the first pool seen at the second edge after %v", i, time.Since(start))
	}
}

// changesDropSlot drops a test's replication slot with slipstream pool --drop-slot.
func changesDropSlot(t *testing.T, origin, slot string) {
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	toml := writeTOML(t, fmt.Sprintf("[[database]]\nname = \"app\"\norigin = %q\n[database.stream]\nslot = %q\n", origin, slot))
	if code := cli.Run(context.Background(), []string{"pool", "--drop-slot", "--config", toml}, stdout, stderr); code != 0 ||
		!strings.Contains(stdout.String(), "replication slot "+slot+" dropped") {
		t.Errorf("slipstream pool --drop-slot exited %d:\n%s%s", code, stdout, stderr)
	}
}

// originWrites are the values a writer committed at the origin, and when: readers check what
// Slipstream answered against them.
type originWrites struct {
	mu      sync.Mutex
	commits []time.Time // commits[i]: when value i+1 was committed
}

func (w *originWrites) committed(v int, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.commits) < v {
		w.commits = append(w.commits, at)
	}
}

// older says whether v, read by a read that started at start, is older than a value
// committed more than bound before start, and by how much.
func (w *originWrites) older(v int, start time.Time, bound time.Duration) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v >= len(w.commits) {
		return 0, false
	}
	age := start.Sub(w.commits[v]) // the first write after v committed then
	return age, age > bound
}

// streamLoad is what cutUnderLoad drives: a write at the origin answering the value it
// committed, readers through Slipstream, and a cut of the change stream's connection.
type streamLoad struct {
	write     func(ctx context.Context) (int, error)
	newReader func() func(ctx context.Context) (int, error)
	cut       func(i int) // the i-th cut of three
}

// cutUnderLoad has 8 clients read a row through inst (max_age 1h) in a loop while a writer
// updates it at the origin, and cuts the change stream three times (errors of an origin that
// is down are counted, not failures): no read answers a value
// older than one committed more than a second before it started (the stream's bound), no
// answer is served while the stream is behind (slipstream_change_stream_reads_behind_total
// stays 0), the database is cached again by itself once the stream is back, the stream stays
// current under load and idle (its probes are reached within max_lag), and the stream's lag
// in bytes is exported.
func cutUnderLoad(t *testing.T, ctx context.Context, inst *instance, load streamLoad) {
	t.Helper()
	waitStreamUp(t, ctx, inst, "app")
	if err := eventually(ctx, func() error {
		if _, ok := metricValue(inst.metrics(t), "slipstream_change_stream_lag_bytes", `db="app"`); !ok {
			return fmt.Errorf("no slipstream_change_stream_lag_bytes")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const bound = time.Second
	var writes originWrites
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var reads, failed atomic.Int64
	hitsBefore := cacheHits(t, inst)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for lctx.Err() == nil {
			// A write whose answer was lost may have committed: the next one's value then
			// dates it later than it was, which only makes the check lenient.
			if v, err := load.write(lctx); err == nil {
				writes.committed(v, time.Now())
			} else if lctx.Err() == nil {
				failed.Add(1)
			}
			time.Sleep(10 * time.Millisecond) // the writer's pace, not a wait for a result
		}
	}()
	for range 8 {
		read := load.newReader()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				start := time.Now()
				v, err := read(lctx)
				if err != nil {
					if lctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				reads.Add(1)
				if age, stale := writes.older(v, start, bound); stale {
					errs <- fmt.Errorf("a read answered %d, overwritten %v before it started", v, age)
					return
				}
			}
		}()
	}
	disconnects := func() float64 {
		v, _ := metricValue(inst.metrics(t), "slipstream_change_stream_disconnects_total", `db="app"`)
		return v
	}
	for i := range 3 {
		lost := disconnects()
		load.cut(i)
		// Seen lost (it may be back already when the cut took long, as a restart does).
		if err := eventually(ctx, func() error {
			if disconnects() == lost {
				return fmt.Errorf("the change stream's loss is not counted")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		waitStreamUp(t, ctx, inst, "app")
	}
	// Back by itself: the row is served from the cache again between the writes.
	hits := cacheHits(t, inst)
	if err := eventually(ctx, func() error {
		if cacheHits(t, inst) <= hits {
			return fmt.Errorf("no cache hit since the stream came back")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The probes are reached in time under load and idle (max_lag is 3 s here): the stream
	// stays current, with no reconnection.
	steady := func(what string) {
		lost := disconnects()
		select {
		case <-ctx.Done():
		case <-time.After(4 * time.Second): // an observation period, longer than max_lag
		}
		if disconnects() != lost || streamUp(t, inst, "app") != 1 {
			t.Errorf("%s, the stream was suspended: %v disconnects, up %v", what, disconnects()-lost, streamUp(t, inst, "app"))
		}
	}
	steady("under load")
	stop()
	wg.Wait()
	steady("idle")
	if v, _ := metricValue(inst.metrics(t), "slipstream_change_stream_lag_bytes", `db="app"`); v > 1<<20 {
		t.Errorf("idle, the stream is %v bytes behind", v)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v, ok := metricValue(inst.metrics(t), "slipstream_change_stream_reads_behind_total", `db="app"`); !ok || v != 0 {
		t.Errorf("slipstream_change_stream_reads_behind_total = %v (exported %v), want 0", v, ok)
	}
	t.Logf("%d reads, %d writes, %v cache hits, %d failed reads and writes", reads.Load(), len(writes.commits), cacheHits(t, inst)-hitsBefore, failed.Load())
}

// TestCuttingPostgreSQLsChangeStreamUnderLoadServesNoStaleRead: cutUnderLoad with the
// walsender killed (issue 16).
func TestCuttingPostgreSQLsChangeStreamUnderLoadServesNoStaleRead(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	inst, writer, table, slot := streamPostgreSQL(t, ctx, `max_lag = "3s"`)
	root := connect(t, ctx, srv.AdminURL()) // the cuts, beside the writer's connection
	read := fmt.Sprintf("select v from %s where id = 1", table)
	cutUnderLoad(t, ctx, inst, streamLoad{
		write: func(ctx context.Context) (v int, err error) {
			return v, writer.QueryRow(ctx, fmt.Sprintf("update %s set v = v + 1 returning v", table)).Scan(&v)
		},
		newReader: func() func(context.Context) (int, error) {
			c := connect(t, ctx, inst.plainURL())
			return func(ctx context.Context) (v int, err error) { return v, c.QueryRow(ctx, read).Scan(&v) }
		},
		cut: func(int) {
			if _, err := root.Exec(ctx, "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1", slot); err != nil {
				t.Error(err)
			}
		},
	})
}

// holdSlot takes the replication slot from the stream that holds it (its walsender
// terminated, until the slot is free to start), so that the stream can't reconnect until the
// returned function releases it.
func holdSlot(t *testing.T, ctx context.Context, origin, slot string) func() {
	t.Helper()
	root := connect(t, ctx, srv.AdminURL())
	pc, err := pgconn.ParseConfig(origin)
	if err != nil {
		t.Fatal(err)
	}
	pc.RuntimeParams["replication"] = "database"
	var held *pgconn.PgConn
	if err := eventually(ctx, func() error {
		if _, err := root.Exec(ctx, "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null", slot); err != nil {
			return err
		}
		c, err := pgconn.ConnectConfig(ctx, pc)
		if err != nil {
			return err
		}
		if err := pglogrepl.StartReplication(ctx, c, slot, 0, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names 'slipstream'"}}); err != nil {
			c.Close(ctx)
			return err
		}
		held = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return func() { held.Close(context.Background()) }
}

// TestAnEdgeServesNothingWhileItsPoolsChangeStreamIsDown: a pool reads the change stream and
// an edge 0 ms away caches the reads; while the pool's stream can't reconnect (the test holds
// its slot), the edge serves and keeps no answer of the database (not only emptied every
// 100 ms: a write straight at the origin is seen by the very next read), and once the stream is
// back the edge caches again by itself; the edge exports the reads it served while the stream
// was behind, 0 (issue 16).
func TestAnEdgeServesNothingWhileItsPoolsChangeStreamIsDown(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	sfx := suffix()
	table, slot := "cse_"+sfx, "slipstream_test_"+sfx
	origin, admin := streamDatabase(t, ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	dir := makeCerts(t)
	toml := writeTOML(t, fmt.Sprintf("[[database]]\nname = \"app\"\norigin = %q\n[database.caching]\nmax_age = \"1h\"\n[database.stream]\nslot = %q\n", origin, slot))
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--config", toml)
	t.Cleanup(func() {
		pool.stop()
		changesDropSlot(t, origin, slot)
	})
	up := func(want float64) error {
		if v := pool.metric(t, "slipstream_change_stream_up", `db="app"`); v != want {
			return fmt.Errorf("the pool's change stream up = %v, want %v", v, want)
		}
		return nil
	}
	if err := eventually(ctx, func() error { return up(1) }); err != nil {
		t.Fatal(err)
	}
	edge := startNode(t, "edge", "--pool", "main="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--config", toml)
	reader := connect(t, ctx, edge.appURL(t))
	read := func() int {
		var v int
		if err := reader.QueryRow(ctx, fmt.Sprintf("select v from %s where id = 1", table)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cachedAgain := func(what string) {
		hits := edge.hits(t)
		if err := eventually(ctx, func() error {
			read()
			if edge.hits(t) == hits {
				return fmt.Errorf("%s, the edge serves no read from its cache", what)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cachedAgain("with the stream current")

	release := holdSlot(t, ctx, origin, slot)
	if err := eventually(ctx, func() error { return up(0) }); err != nil {
		t.Fatal(err)
	}
	hits := edge.hits(t)
	for i := 1; i <= 5; i++ {
		before := read()
		read() // a hit, had the edge kept the first read's answer
		if _, err := admin.Exec(ctx, fmt.Sprintf("update %s set v = v + 1", table)); err != nil {
			t.Fatal(err)
		}
		if v := read(); v != before+1 {
			t.Fatalf("with the stream down, a write at the origin answered %d, then the edge answered %d", before+1, v)
		}
	}
	if h := edge.hits(t); h != hits {
		t.Errorf("with the pool's stream down, the edge served %v reads from its cache", h-hits)
	}

	release()
	if err := eventually(ctx, func() error { return up(1) }); err != nil {
		t.Fatal(err)
	}
	cachedAgain("once the stream is back")
	m := metricsLine.FindStringSubmatch(edge.stdout)
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", edge.stdout)
	}
	body, _ := httpGet(t, "http://"+m[1]+"/metrics")
	if v, ok := metricValue(body, "slipstream_change_stream_reads_behind_total", `db="app"`); !ok || v != 0 {
		t.Errorf("the edge's slipstream_change_stream_reads_behind_total = %v (exported %v), want 0", v, ok)
	}
}

// TestWritesStraightAtPostgreSQLReachCachedReadsOfRelatedRelationsThroughTheStream: the
// stream names the relation a row changed in (a table under a view, a partition, a table a
// foreign key cascades to); a cached read of another relation that shows those rows (the
// view, the partitioned parent, the referencing table) is seen stale all the same, through
// the related relations the cache keeps reads under (issue 16).
func TestWritesStraightAtPostgreSQLReachCachedReadsOfRelatedRelationsThroughTheStream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	sfx := suffix()
	base, view, parent, part, child, slot := "csb_"+sfx, "csv_"+sfx, "csp_"+sfx, "csp1_"+sfx, "csc_"+sfx, "slipstream_test_"+sfx
	origin, admin := streamDatabase(t, ctx)
	for _, ddl := range []string{
		fmt.Sprintf("create table %s (id int primary key, v int)", base),
		fmt.Sprintf("insert into %s values (1, 0)", base),
		fmt.Sprintf("create view %s as select id, v from %s", view, base),
		fmt.Sprintf("create table %s (id int primary key, v int) partition by range (id)", parent),
		fmt.Sprintf("create table %s partition of %s for values from (0) to (100)", part, parent),
		fmt.Sprintf("insert into %s values (1, 0)", parent),
		fmt.Sprintf("create table %s (id int primary key, b int references %s (id) on delete cascade)", child, base),
		fmt.Sprintf("insert into %s values (1, 1)", child),
	} {
		if _, err := admin.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	inst := runServe(t, []string{"--config", writeTOML(t, fmt.Sprintf("[[database]]\nname = \"app\"\norigin = %q\n[database.caching]\nmax_age = \"1h\"\n[database.stream]\nslot = %q\n", origin, slot))})
	t.Cleanup(func() {
		inst.Stop()
		changesDropSlot(t, origin, slot)
	})
	waitStreamUp(t, ctx, inst, "app")
	c := connect(t, ctx, inst.plainURL())
	for _, tc := range []struct{ read, write string }{
		{fmt.Sprintf("select v::text from %s where id = 1", view), fmt.Sprintf("update %s set v = v + 1", base)},
		{fmt.Sprintf("select v::text from %s where id = 1", parent), fmt.Sprintf("update %s set v = v + 1", part)},
		{fmt.Sprintf("select count(*)::text from %s", child), fmt.Sprintf("delete from %s", base)},
	} {
		before := readUntilCached(t, ctx, inst, c, tc.read)
		if _, err := admin.Exec(ctx, tc.write); err != nil {
			t.Fatal(err)
		}
		if err := eventually(ctx, func() error {
			var v string
			if err := c.QueryRow(ctx, tc.read).Scan(&v); err != nil || v == before {
				return fmt.Errorf("%s still answers %s (%v) after %s at the origin", tc.read, v, err, tc.write)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
