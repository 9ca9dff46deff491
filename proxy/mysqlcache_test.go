package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// A hit costs the cache's string copy of the key and its table-generation lookup, and for
// COM_QUERY the query text's string: a budget, so that the hot path stays lean.
func TestMySQLCacheHitAllocations(t *testing.T) {
	c, err := cache.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := New(Config{Cache: c})
	sess := &mysqlSession{s: s, log: s.log, nc: &discardConn{}, stream: &okStream{}, status: mysql.SERVER_STATUS_AUTOCOMMIT}
	sess.mc, sess.state = s.newMySQLCache(Database{Name: "app", Caching: Caching{MaxAge: time.Minute, MaxResultBytes: 1 << 20}}, "u", 0, 0, 45, link.Caps{})
	query := mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, "SELECT c FROM sbtest1 WHERE id = 42"...))
	sess.state.Statements[1] = &sessionstate.MySQLStatement{SQL: "SELECT c FROM sbtest1 WHERE id = ?", Params: 1, Types: []byte{mysql.MYSQL_TYPE_LONG, 0}}
	execute := mysqlwire.AppendPacket(nil, 0, []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 42, 0, 0, 0})
	resp := mysqlwire.AppendPacket(nil, 1, []byte{1})
	resp = mysqlwire.AppendPacket(resp, 2, []byte("\x03def\x00\x00\x00\x01c\x00\x0c\x08\x00\x78\x00\x00\x00\xfe\x00\x00\x00\x00\x00"))
	resp = mysqlwire.AppendPacket(resp, 3, []byte{0xfe, 0, 0, 2, 0})
	for _, raw := range [][]byte{query, execute} {
		p := sess.planMySQL(raw)
		c.Put(sess.mc.ns, p.key, resp, c.Snapshot(sess.mc.ns, []string{"sbtest1"}), time.Minute, 0, time.Now())
	}
	c.Settle()
	buf := make([]byte, 0, 1024)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		raw    []byte
		budget float64
	}{{"COM_QUERY", query, 3}, {"COM_STMT_EXECUTE", execute, 2}} {
		hits := testCounter(s.m.cacheQ.WithLabelValues("app", "hit"))
		n := testing.AllocsPerRun(100, func() { buf, _ = sess.command(ctx, tc.raw, buf) })
		if testCounter(s.m.cacheQ.WithLabelValues("app", "hit")) < hits+100 {
			t.Fatalf("%s: not answered from the cache", tc.name)
		}
		if n > tc.budget {
			t.Errorf("%s: %v allocations per hit, budget %v", tc.name, n, tc.budget)
		}
	}
}

func testCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestClassifyMySQLForTheCache(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		cacheable bool
		writes    []string
		writeAll  bool
		other     bool // the session's answers become its own
	}{
		{sql: "SELECT c FROM sbtest1 WHERE id = ?", cacheable: true},
		{sql: "SELECT NOW()"},
		{sql: "SELECT my_fn(id) FROM t", writeAll: true, other: true},
		{sql: "UPDATE sbtest1 SET k = k + 1 WHERE id = ?", writes: []string{"sbtest1"}},
		{sql: "INSERT INTO shop.orders SELECT * FROM carts", writes: []string{"carts", "shop.orders"}},
		{sql: "DELETE FROM t; SELECT 1", writes: []string{"t"}, writeAll: true},
		{sql: "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t", writes: []string{"t"}},
		{sql: "CREATE TABLE t2 (id INT)", writeAll: true},
		{sql: "CREATE TEMPORARY TABLE t2 (id INT)", writeAll: true, other: true},
		{sql: "CALL refresh()", writeAll: true, other: true},
		{sql: "SELEC oops", writeAll: true, other: true},
		{sql: "SET @x = 1", other: true},
		{sql: "SET NAMES utf8mb4"},
		{sql: "BEGIN"},
	} {
		c := classifyMySQL(tc.sql)
		if c.cacheable != tc.cacheable || !slices.Equal(c.writes, tc.writes) || c.writeAll != tc.writeAll || c.eff.Other != tc.other {
			t.Errorf("%s: cacheable %v writes %q all %v other %v; want %v %q %v %v", tc.sql, c.cacheable, c.writes, c.writeAll,
				c.eff.Other, tc.cacheable, tc.writes, tc.writeAll, tc.other)
		}
	}
	if !systemSchema([]string{"information_schema.processlist"}, "") || !systemSchema(nil, "mysql") || systemSchema([]string{"shop.t"}, "app") {
		t.Error("systemSchema")
	}
}

func TestReadsDiagnostics(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT FOUND_ROWS()": true, "show warnings": true, "SELECT @@warning_count": true, "SHOW COUNT(*) ERRORS": true,
		"SELECT ROW_COUNT()": true, "GET DIAGNOSTICS @n = NUMBER": true, "SELECT c FROM sbtest1 WHERE id = 1": false, "": false,
	} {
		if readsDiagnostics(q) != want {
			t.Errorf("readsDiagnostics(%q) = %v", q, !want)
		}
	}
}
