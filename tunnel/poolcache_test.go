package tunnel_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/poolend"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// hinter is the edge end's side of the pool end's cache.
type hinter interface {
	HintCacheable(key []byte, tables []string, maxAge, swr time.Duration)
	FromPoolCache() (time.Duration, bool)
}

// poolCacheRig is a pool end with a cache in front of the real origin, whose origin queries
// (the pool's slipstream_queries_total) and cache statuses a test reads.
type poolCacheRig struct {
	addr  string
	cache *cache.Cache
	reg   *prometheus.Registry
}

func startPoolWithCache(t *testing.T) (*poolCacheRig, func(*recorder) link.Stream) {
	t.Helper()
	edgeTLS, poolTLS := certs(t)
	c, err := cache.New(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := prometheus.NewRegistry()
	addr, _ := startPoolEnd(t, poolTLS, pool.Config{Metrics: pool.NewMetrics(reg)},
		tunnel.ServerConfig{}, poolend.Config{Cache: c, Metrics: poolend.NewMetrics(reg)})
	rig := &poolCacheRig{addr: addr, cache: c, reg: reg}
	return rig, func(r *recorder) link.Stream { return openStream(t, edgeWithCache(t, addr, edgeTLS, r)) }
}

// metric returns the sum of the samples of the counter named, whose labels include want.
func (r *poolCacheRig) metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue samples
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// originQueries is how many queries the pool has sent to the origin.
func (r *poolCacheRig) originQueries(t *testing.T) float64 {
	return r.metric(t, "slipstream_queries_total", nil)
}

// read sends sql as a unit hinted as cacheable under key, reading table, and returns its
// answer and whether it came from the pool end's cache. The pool end's cache has applied
// what it stored once it returns.
func (r *poolCacheRig) read(t *testing.T, s link.Stream, key, table, sql string) ([]byte, bool) {
	t.Helper()
	s.(hinter).HintCacheable([]byte(key), []string{table}, time.Minute, 0)
	if err := s.Send(context.Background(), query(sql)); err != nil {
		t.Fatal(err)
	}
	out := recvUnit(t, s)
	r.cache.Settle()
	fresh, cached := s.(hinter).FromPoolCache()
	if cached && (fresh <= 0 || fresh > time.Minute) {
		t.Errorf("a hit from the pool's cache is fresh for %v, want (0, 1m]", fresh)
	}
	return out, cached
}

// recvUnit receives while s is pending. A stream's Recv is given one context for its whole
// life: its end ends the stream.
func recvUnit(t *testing.T, s link.Stream) []byte {
	t.Helper()
	var out []byte
	for s.Pending() {
		var err error
		if out, err = s.Recv(context.Background(), out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// exec runs sql on s, reporting that it writes table when table is not empty.
func exec(t *testing.T, s link.Stream, sql, table string) []byte {
	t.Helper()
	if table != "" {
		s.(interface{ ReportWrites([]string, bool) }).ReportWrites([]string{table}, false)
	}
	if err := s.Send(context.Background(), query(sql)); err != nil {
		t.Fatal(err)
	}
	out := recvUnit(t, s)
	if bytes.Contains(out, []byte("SERROR")) {
		t.Fatalf("%s: %q", sql, out)
	}
	return out
}

func TestThePoolCacheAnswersAnotherEdgeUntilAWriteIsReported(t *testing.T) {
	rig, open := startPoolWithCache(t)
	var ra, rb recorder
	a, b := open(&ra), open(&rb)
	exec(t, a, "DROP TABLE IF EXISTS poolcache_t; CREATE TABLE poolcache_t (v int); INSERT INTO poolcache_t VALUES (1)", "poolcache_t")
	const key, sel = "k-select", "SELECT v FROM poolcache_t"

	// As at the edge, an answer is kept the first time its key misses.
	before := rig.originQueries(t)
	if _, cached := rig.read(t, a, key, "poolcache_t", sel); cached || rig.originQueries(t) != before+1 {
		t.Fatalf("edge a's first read: cached=%v, origin queries %v -> %v; want it sent to the origin", cached, before, rig.originQueries(t))
	}
	before = rig.originQueries(t)
	first, cached := rig.read(t, a, key, "poolcache_t", sel)
	if !cached || rig.originQueries(t) != before {
		t.Fatalf("edge a's second read: cached=%v, origin queries %v -> %v; want the pool's cache to answer", cached, before, rig.originQueries(t))
	}
	second, cached := rig.read(t, b, key, "poolcache_t", sel)
	if !cached || rig.originQueries(t) != before {
		t.Fatalf("edge b's read of the same key: cached=%v, origin queries %v -> %v; want the pool's cache to answer", cached, before, rig.originQueries(t))
	}
	if !bytes.Equal(first, second) {
		t.Errorf("the pool's cache answered %q, the origin %q", second, first)
	}
	if h, m := rig.metric(t, "slipstream_pool_cache_queries_total", map[string]string{"status": "hit"}),
		rig.metric(t, "slipstream_pool_cache_queries_total", map[string]string{"status": "miss"}); h != 2 || m != 1 {
		t.Errorf("pool cache hits and misses: %v, %v; want 2, 1", h, m)
	}

	// A write reported by edge a invalidates the pool's cache before its answer: edge b's
	// next read goes to the origin and sees it.
	exec(t, a, "UPDATE poolcache_t SET v = 2", "poolcache_t")
	before = rig.originQueries(t)
	third, cached := rig.read(t, b, key, "poolcache_t", sel)
	if cached || rig.originQueries(t) != before+1 || !bytes.Contains(third, []byte("\x00\x00\x00\x012")) {
		t.Fatalf("edge b's read after edge a's write: cached=%v, origin queries %v -> %v, answer %q; want the new value from the origin",
			cached, before, rig.originQueries(t), third)
	}
	if _, cached := rig.read(t, a, key, "poolcache_t", sel); !cached {
		t.Errorf("edge a's read after edge b stored the new answer was not answered by the pool's cache")
	}
	if got := ra.seen(); len(got) != 0 {
		t.Errorf("the writing edge was sent %q", got)
	}
	if got := rb.seen(); len(got) != 2 || !strings.Contains(got[1], "poolcache_t") {
		t.Errorf("edge b's invalidations: %q, want the writes of edge a", got)
	}
}

func TestThePoolCacheNeverStoresAnError(t *testing.T) {
	rig, open := startPoolWithCache(t)
	var ra, rb recorder
	a, b := open(&ra), open(&rb)
	const key = "k-error"
	before := rig.originQueries(t)
	for i, s := range []link.Stream{a, b, a} {
		out, cached := rig.read(t, s, key, "nothing", "SELECT 1/0")
		if cached || !bytes.Contains(out, []byte("22012")) {
			t.Fatalf("read %d: cached=%v, answer %q; want the origin's division by zero", i, cached, out)
		}
	}
	if got := rig.originQueries(t); got != before+3 {
		t.Errorf("origin queries: %v -> %v, want each failing read sent", before, got)
	}
	// A unit that leaves a transaction open is not kept either.
	for i := range 2 {
		out, cached := rig.read(t, a, "k-open", "nothing", "BEGIN; SELECT 1")
		if cached {
			t.Fatalf("read %d of a unit that opens a transaction came from the pool's cache: %q", i, out)
		}
		exec(t, a, "ROLLBACK", "")
	}
}

func TestAReadWhoseTablesAreWrittenWhileInFlightIsNotServedLater(t *testing.T) {
	rig, open := startPoolWithCache(t)
	var ra, rb, rc recorder
	a, b, holder := open(&ra), open(&rb), open(&rc)
	exec(t, a, "DROP TABLE IF EXISTS poolcache_f; CREATE TABLE poolcache_f (v int); INSERT INTO poolcache_f VALUES (1)", "poolcache_f")
	// The read waits for a lock that holder keeps until the write is done.
	const key = "k-inflight"
	const sel = "SELECT v FROM poolcache_f, pg_advisory_xact_lock_shared(7707)"
	// The key's first miss is admitted (issue 13): the read in flight is that first miss.
	exec(t, holder, "BEGIN; SELECT pg_advisory_xact_lock(7707)", "")
	a.(hinter).HintCacheable([]byte(key), []string{"poolcache_f"}, time.Minute, 0)
	if err := a.Send(context.Background(), query(sel)); err != nil {
		t.Fatal(err)
	}
	// Wait until the read waits on the lock at the origin: the pool end has taken its
	// snapshot and sent it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := exec(t, b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", "")
		if bytes.Contains(out, []byte("\x00\x00\x00\x011")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read never waited on the lock: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	exec(t, b, "UPDATE poolcache_f SET v = 2", "poolcache_f")
	exec(t, holder, "COMMIT", "")
	old := recvUnit(t, a)
	rig.cache.Settle()
	if !bytes.Contains(old, []byte("\x00\x00\x00\x011")) {
		t.Fatalf("the read in flight answered %q, want the value before the write (it read its snapshot first)", old)
	}
	before := rig.originQueries(t)
	out, cached := rig.read(t, b, key, "poolcache_f", sel)
	if cached || rig.originQueries(t) != before+1 || !bytes.Contains(out, []byte("\x00\x00\x00\x012")) {
		t.Fatalf("the next read: cached=%v, origin queries %v -> %v, answer %q; want the new value from the origin", cached, before, rig.originQueries(t), out)
	}
	if _, cached := rig.read(t, a, key, "poolcache_f", sel); !cached {
		t.Errorf("a read after an answer stored once nothing moved was not answered by the pool's cache")
	}
}

// Identical misses from two edges at once send one query to the origin: the second waits for
// the first's answer and is answered with it (coalesced), as identical misses at one edge are.
func TestIdenticalMissesFromTwoEdgesSendOneQueryToTheOrigin(t *testing.T) {
	rig, open := startPoolWithCache(t)
	var ra, rb recorder
	a, b := open(&ra), open(&rb)
	exec(t, a, "DROP TABLE IF EXISTS poolcache_co; CREATE TABLE poolcache_co (v int); INSERT INTO poolcache_co VALUES (7)", "poolcache_co")
	const key = "k-coalesce"
	// Slow enough that the second edge's miss arrives while the first is at the origin.
	const sel = "SELECT v, pg_sleep(0.5) FROM poolcache_co"
	// Both are the key's first misses, which are admitted (issue 13): nothing is cached yet.
	before := rig.originQueries(t)
	type result struct {
		out    []byte
		cached bool
	}
	results := make(chan result, 2)
	for _, s := range []link.Stream{a, b} {
		go func() {
			s.(hinter).HintCacheable([]byte(key), []string{"poolcache_co"}, time.Minute, 0)
			if err := s.Send(context.Background(), query(sel)); err != nil {
				t.Error(err)
				results <- result{}
				return
			}
			var out []byte
			for s.Pending() {
				var err error
				if out, err = s.Recv(context.Background(), out); err != nil {
					t.Error(err)
					break
				}
			}
			_, cached := s.(hinter).FromPoolCache()
			results <- result{out, cached}
		}()
		time.Sleep(100 * time.Millisecond) // the first is at the origin by now
	}
	r1, r2 := <-results, <-results
	if n := rig.originQueries(t) - before; n != 1 {
		t.Errorf("two identical misses at once sent %v queries to the origin, want 1", n)
	}
	if !bytes.Equal(r1.out, r2.out) || !bytes.Contains(r1.out, []byte("\x00\x00\x00\x017")) {
		t.Errorf("answers %q and %q, want the same, with 7", r1.out, r2.out)
	}
	if r1.cached == r2.cached {
		t.Errorf("answered from the pool end without the origin: %v and %v; want exactly one", r1.cached, r2.cached)
	}
	if c := rig.metric(t, "slipstream_pool_cache_queries_total", map[string]string{"status": "coalesced"}); c != 1 {
		t.Errorf("coalesced units: %v, want 1", c)
	}
}
