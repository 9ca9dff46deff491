package proxy

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// cachedMySQL is an edge with a result cache in front of the pool side and MariaDB, and a
// table to read.
type cachedMySQL struct {
	addr   string
	reg    *prometheus.Registry
	direct *sql.DB
}

func startCachedMySQL(t *testing.T, table string) *cachedMySQL {
	t.Helper()
	c, err := cache.New(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cm := &cachedMySQL{reg: prometheus.NewRegistry()}
	db := Database{Name: "cached", User: "edgeuser", Password: "edge-pw"}
	cm.addr = startPooledEdgeWith(t, Config{Cache: c, Metrics: NewMetrics(cm.reg)}, mysqlpool.Config{MaxConns: 4}, db)
	cm.direct = openDirect(t, "")
	exec(t, cm.direct, "DROP TABLE IF EXISTS "+table)
	exec(t, cm.direct, "CREATE TABLE "+table+` (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(10,2), b BLOB,
		dt DATETIME(6), n INT NULL, j JSON, f DOUBLE, u BIGINT UNSIGNED, t TIME, e ENUM('a','b'))`)
	exec(t, cm.direct, "INSERT INTO "+table+` VALUES
		(1, 'one', 12.5, x'00ff10', '2024-02-29 13:14:15.123456', NULL, '{"a": [1, 2]}', 1.5, 18446744073709551615, '-12:00:01', 'a'),
		(2, 'two', -0.01, '', '1999-12-31 23:59:59', 7, 'null', -2e-300, 0, '00:00:00', 'b'),
		(3, 'üñî', 0, NULL, NULL, -1, '[]', 0, 42, NULL, NULL)`)
	return cm
}

func openDirect(t *testing.T, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", mysrv.DSN(mytest.AppUser, mytest.AppPassword, mytest.AppDB)+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// count reads slipstream_cache_queries_total{db="cached",status=status}.
func (cm *cachedMySQL) count(status cache.Status) float64 {
	mfs, _ := cm.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "slipstream_cache_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["db"] == "cached" && labels["status"] == string(status) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (cm *cachedMySQL) open(t *testing.T, params string) *sql.DB {
	return openDSN(t, cm.addr, "edgeuser", "edge-pw", "cached", params)
}

// rows reads q's answer as text, column types first.
func rows(t *testing.T, db interface {
	Query(string, ...any) (*sql.Rows, error)
}, q string, args ...any) []string {
	t.Helper()
	rs, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	types, err := rs.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ct := range types {
		out = append(out, ct.Name()+" "+ct.DatabaseTypeName())
	}
	vals := make([]sql.RawBytes, len(types))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := ""
		for _, v := range vals {
			if v == nil {
				row += "|NULL"
			} else {
				row += fmt.Sprintf("|%q", v)
			}
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var mysqlCacheModes = []struct{ name, params string }{
	{"COM_QUERY (interpolateParams)", "&interpolateParams=true"},
	{"prepared statements", ""},
}

func TestMySQLCacheServesRepeatedReadsAndSeesWritesAtOnce(t *testing.T) {
	cm := startCachedMySQL(t, "cache_rw")
	for i, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			a, b := cm.open(t, mode.params), cm.open(t, mode.params)
			read := func(db *sql.DB) string {
				t.Helper()
				var v string
				if err := db.QueryRow("SELECT v FROM cache_rw WHERE id = ?", 1).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			exec(t, cm.direct, "UPDATE cache_rw SET v = ? WHERE id = 1", fmt.Sprint("start", i))
			hits := cm.count(cache.Hit)
			for range 6 { // the cache takes an entry asynchronously
				if v := read(a); v != fmt.Sprint("start", i) {
					t.Fatalf("read %q", v)
				}
			}
			if cm.count(cache.Hit) == hits {
				t.Fatal("the third identical read was not a hit")
			}
			// A write the edge does not see is invisible until max_age: proof the answer is cached.
			exec(t, cm.direct, "UPDATE cache_rw SET v = 'behind' WHERE id = 1")
			if v := read(b); v != fmt.Sprint("start", i) {
				t.Fatalf("read %q, want the cached answer", v)
			}
			// A write through the edge is seen at once, on another connection.
			exec(t, a, "UPDATE cache_rw SET v = ? WHERE id = ?", "edge", 1)
			if v := read(b); v != "edge" {
				t.Fatalf("after an UPDATE through the edge another connection read %q", v)
			}
			read(b)
			read(b)
			// Inside a transaction: reads are not cached, and the COMMIT invalidates.
			tx, err := a.Begin()
			if err != nil {
				t.Fatal(err)
			}
			exec(t, tx, "UPDATE cache_rw SET v = ? WHERE id = ?", "in-tx", 1)
			txs := cm.count(cache.Transaction)
			var v string
			if err := tx.QueryRow("SELECT v FROM cache_rw WHERE id = ?", 1).Scan(&v); err != nil || v != "in-tx" {
				t.Fatalf("read in the transaction: %v %q", err, v)
			}
			if cm.count(cache.Transaction) == txs {
				t.Fatal("a read in a transaction was not counted as such")
			}
			if v := read(b); v != "edge" {
				t.Fatalf("before COMMIT another connection read %q", v)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if v := read(b); v != "in-tx" {
				t.Fatalf("after COMMIT another connection read %q", v)
			}
		})
	}
}

func TestMySQLCacheNeverKeepsVolatileLockingOrWarningReads(t *testing.T) {
	cm := startCachedMySQL(t, "cache_vol")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			db := cm.open(t, mode.params)
			db.SetMaxOpenConns(1)
			exec(t, db, "SET @x = 1")
			for _, q := range []string{"SELECT NOW(6)", "SELECT RAND()", "SELECT @x", "SELECT UUID()",
				"SELECT v FROM cache_vol WHERE id = 1 FOR UPDATE", "SELECT v FROM cache_vol WHERE id = 1 LOCK IN SHARE MODE",
				"/* slipstream: cache=off */ SELECT v FROM cache_vol WHERE id = 2",
				"SELECT CAST('12x' AS SIGNED) FROM cache_vol WHERE id = 2", // a warning, which SHOW WARNINGS would miss
			} {
				hits := cm.count(cache.Hit)
				var seen []string
				for range 4 {
					seen = append(seen, rows(t, db, q)...)
				}
				if cm.count(cache.Hit) != hits {
					t.Errorf("%s: served from the cache", q)
				}
				if q == "SELECT RAND()" && len(slices.Compact(slices.Clone(seen))) < 3 {
					t.Errorf("%s: the same answer every time: %q", q, seen)
				}
			}
		})
	}
}

func TestMySQLCacheNotForSessionsThatSetVariables(t *testing.T) {
	cm := startCachedMySQL(t, "cache_set")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			db := cm.open(t, mode.params)
			db.SetMaxOpenConns(1)
			rows(t, db, "SELECT v FROM cache_set WHERE id = 2")
			exec(t, db, "SET @x = 5")
			hits, unc := cm.count(cache.Hit), cm.count(cache.Uncacheable)
			for range 4 {
				rows(t, db, "SELECT v FROM cache_set WHERE id = 2")
			}
			if cm.count(cache.Hit) != hits || cm.count(cache.Uncacheable) < unc+4 {
				t.Fatalf("a session with a user variable: %v hits, %v uncacheable", cm.count(cache.Hit)-hits, cm.count(cache.Uncacheable)-unc)
			}
			// A fresh session (after SET NAMES, which keys rather than disables) is cached again.
			other := cm.open(t, mode.params+"&charset=utf8mb4")
			hits = cm.count(cache.Hit)
			for range 4 {
				rows(t, other, "SELECT v FROM cache_set WHERE id = 2")
			}
			if cm.count(cache.Hit) == hits {
				t.Fatal("a session after SET NAMES was never served from the cache")
			}
		})
	}
}

func TestMySQLCachedAnswersEqualDirectOnes(t *testing.T) {
	cm := startCachedMySQL(t, "cache_types")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			db, direct := cm.open(t, mode.params), openDirect(t, "")
			if mode.params != "" {
				direct = openDirect(t, "?"+mode.params[1:])
			}
			for _, q := range []string{"SELECT * FROM cache_types ORDER BY id", "SELECT * FROM cache_types WHERE id = ?",
				"SELECT id, v, CONCAT(v, '!'), d * 2, LENGTH(b), j FROM cache_types WHERE id > ? ORDER BY id"} {
				var args []any
				if slices.Contains([]byte(q), '?') {
					args = []any{1}
				}
				want := rows(t, direct, q, args...)
				hits := cm.count(cache.Hit)
				for i := range 6 { // the cache takes an entry asynchronously
					if got := rows(t, db, q, args...); !slices.Equal(got, want) {
						t.Fatalf("%s, read %d:\n got %q\nwant %q", q, i, got, want)
					}
				}
				if cm.count(cache.Hit) == hits {
					t.Fatalf("%s: never served from the cache", q)
				}
			}
		})
	}
}

// A client that binds parameter types once and then executes without them (libmysqlclient,
// sysbench) must get the right answer even when the pool side missed the types because the
// execute that carried them was answered from the cache.
func TestMySQLCacheExecuteRelyingOnTypesSentInACachedExecute(t *testing.T) {
	cm := startCachedMySQL(t, "cache_ps")
	nc, r, _ := rawLogin(t, cm.addr, "edgeuser", "edge-pw", "cached")
	send := func(p []byte) {
		t.Helper()
		if _, err := nc.Write(mysqlwire.AppendPacket(nil, 0, p)); err != nil {
			t.Fatal(err)
		}
	}
	send(append([]byte{mysql.COM_STMT_PREPARE}, "SELECT v FROM cache_ps WHERE id = ?"...))
	ok := readPayload(t, r)
	if ok[0] != 0 {
		t.Fatalf("prepare: %q", ok)
	}
	id := binary.LittleEndian.Uint32(ok[1:])
	for range int(binary.LittleEndian.Uint16(ok[5:])) + int(binary.LittleEndian.Uint16(ok[7:])) {
		readPayload(t, r) // column and parameter definitions (CLIENT_DEPRECATE_EOF: no EOF)
	}
	execute := func(types []byte, value []byte) string {
		t.Helper()
		p := append([]byte{mysql.COM_STMT_EXECUTE}, binary.LittleEndian.AppendUint32(nil, id)...)
		p = append(p, 0, 1, 0, 0, 0, 0) // flags, iterations, null bitmap
		if types != nil {
			p = append(append(p, 1), types...)
		} else {
			p = append(p, 0)
		}
		send(append(p, value...))
		var v string
		for i := 0; ; i++ {
			pl := readPayload(t, r)
			switch {
			case pl[0] == 0xff:
				t.Fatalf("execute: %q", pl)
			case i > 0 && pl[0] == 0xfe:
				return v
			case i > 1 && pl[0] == 0: // a binary row: header, null bitmap, then v as a string
				v = string(pl[3 : 3+int(pl[2])])
			}
		}
	}
	longlong := []byte{mysql.MYSQL_TYPE_LONGLONG, 0}
	varString := []byte{mysql.MYSQL_TYPE_VAR_STRING, 0}
	hits := cm.count(cache.Hit)
	for range 6 {
		if v := execute(varString, []byte{1, '2'}); v != "two" {
			t.Fatalf("id '2': %q", v)
		}
	}
	if cm.count(cache.Hit) == hits {
		t.Fatal("never served from the cache")
	}
	if v := execute(longlong, binary.LittleEndian.AppendUint64(nil, 1)); v != "one" {
		t.Fatalf("id 1: %q", v)
	}
	hits = cm.count(cache.Hit)
	if v := execute(varString, []byte{1, '2'}); v != "two" || cm.count(cache.Hit) != hits+1 {
		t.Fatalf("id '2' again: %q, not from the cache", v)
	}
	// No types: the string ones of the last execute, which the pool side never saw.
	if v := execute(nil, []byte{1, '3'}); v != "üñî" {
		t.Fatalf("id '3' with the types sent before: %q", v)
	}
}

func TestMySQLCacheKeysOnTheCurrentDatabase(t *testing.T) {
	cm := startCachedMySQL(t, "cache_use")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			db := cm.open(t, mode.params)
			db.SetMaxOpenConns(1)
			hits := cm.count(cache.Hit)
			for range 6 {
				rows(t, db, "SELECT v FROM cache_use WHERE id = ?", 1)
			}
			if cm.count(cache.Hit) == hits {
				t.Fatal("never served from the cache")
			}
			exec(t, db, "USE information_schema")
			if _, err := db.Query("SELECT v FROM cache_use WHERE id = ?", 1); mysqlErrorNumber(err) != 1109 {
				t.Fatalf("after USE information_schema: %v, want error 1109 (unknown table)", err)
			}
			exec(t, db, "USE "+mytest.AppDB)
		})
	}
}

func TestMySQLCacheRefreshesAnAnswerPastMaxAge(t *testing.T) {
	c, err := cache.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	db := Database{Name: "cached", User: "edgeuser", Password: "edge-pw",
		Caching: Caching{MaxAge: 100 * time.Millisecond, StaleWhileRevalidate: time.Minute}}
	addr := startPooledEdgeWith(t, Config{Cache: c}, mysqlpool.Config{MaxConns: 2}, db)
	direct := openDirect(t, "")
	exec(t, direct, "CREATE OR REPLACE TABLE cache_swr (id INT PRIMARY KEY, v TEXT)")
	exec(t, direct, "INSERT INTO cache_swr VALUES (1, 'old')")
	edge := openDSN(t, addr, "edgeuser", "edge-pw", "cached", "")
	read := func() string {
		t.Helper()
		var v string
		if err := edge.QueryRow("SELECT v FROM cache_swr WHERE id = ?", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for range 3 {
		read()
	}
	exec(t, direct, "UPDATE cache_swr SET v = 'new' WHERE id = 1") // behind the edge's back
	deadline := time.Now().Add(5 * time.Second)
	for read() != "new" {
		if time.Now().After(deadline) {
			t.Fatal("the answer was never refreshed")
		}
	}
}

// Invariant 1 under concurrency: once a write's answer has reached its client, no client reads
// an older value, whatever the cache was doing (flights, admissions) meanwhile.
func TestMySQLCacheNeverAnswersOlderThanAnAcknowledgedWrite(t *testing.T) {
	cm := startCachedMySQL(t, "cache_race")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			exec(t, cm.direct, "UPDATE cache_race SET n = 0 WHERE id = 1")
			writer, readers := cm.open(t, mode.params), cm.open(t, mode.params)
			readers.SetMaxOpenConns(6)
			var acked atomic.Int64
			done := make(chan struct{})
			errs := make(chan error, 6)
			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						lo := acked.Load()
						var n int64
						if err := readers.QueryRow("SELECT n FROM cache_race WHERE id = ?", 1).Scan(&n); err != nil {
							errs <- err
							return
						}
						if n < lo {
							errs <- fmt.Errorf("read %d after the write of %d was acknowledged", n, lo)
							return
						}
					}
				}()
			}
			hits := cm.count(cache.Hit)
			for i := int64(1); i <= 150; i++ {
				if _, err := writer.Exec("UPDATE cache_race SET n = ? WHERE id = ?", i, 1); err != nil {
					t.Fatal(err)
				}
				acked.Store(i)
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if cm.count(cache.Hit) == hits {
				t.Error("no read was served from the cache: the test proves nothing")
			}
			t.Logf("%v hits", cm.count(cache.Hit)-hits)
		})
	}
}

// FOUND_ROWS() and SHOW WARNINGS right after a read the cache answered describe that read,
// as they would directly: the edge runs it on the origin again first.
func TestMySQLCacheDiagnosticsDescribeTheLastRead(t *testing.T) {
	cm := startCachedMySQL(t, "cache_diag")
	for _, mode := range mysqlCacheModes {
		t.Run(mode.name, func(t *testing.T) {
			db := cm.open(t, mode.params)
			db.SetMaxOpenConns(1)
			read := func() {
				t.Helper()
				if got := rows(t, db, "SELECT v FROM cache_diag WHERE id <= ? ORDER BY id", 3); len(got) != 4 {
					t.Fatalf("read %q", got)
				}
			}
			for range 6 {
				read()
			}
			hits := cm.count(cache.Hit)
			rows(t, db, "SELECT 1/0") // one row, one warning, never cached
			read()
			if cm.count(cache.Hit) != hits+1 {
				t.Fatal("the read was not answered from the cache")
			}
			var found int
			if err := db.QueryRow("SELECT FOUND_ROWS()").Scan(&found); err != nil || found != 3 {
				t.Fatalf("FOUND_ROWS() after a cached read of 3 rows: %d, %v", found, err)
			}
			rows(t, db, "SELECT 1/0")
			read()
			if got := rows(t, db, "SHOW WARNINGS"); len(got) != 3 {
				t.Fatalf("SHOW WARNINGS after a cached read without warnings: %q", got)
			}
		})
	}
}
