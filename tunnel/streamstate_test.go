package tunnel_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// edgeCache returns an edge end connected to the pool at addr whose cache is a real result
// cache, once it holds a lease on it.
func edgeCache(t *testing.T, addr string, tlsConf *tls.Config) (*tunnel.Client, *cache.Cache) {
	t.Helper()
	c, err := cache.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	edge := tunnel.Dial(context.Background(), addr, tunnel.ClientConfig{TLS: tlsConf, Logger: quiet, ConnectWait: 2 * time.Second, Cache: c})
	t.Cleanup(func() { edge.Close() })
	if !within(5*time.Second, edge.CacheCurrent) {
		t.Fatal("the edge never got a lease on its cache")
	}
	return edge, c
}

// keeps says whether c keeps an answer of db put now, and serves it.
func keeps(c *cache.Cache, db string) bool {
	key := []byte("select v from t " + time.Now().String())
	c.Put(db, key, []byte("answer"), c.Snapshot(db, []string{"t"}), time.Hour, 0, time.Now())
	c.Settle()
	_, st := c.Get(db, key, time.Now())
	return st == cache.Hit
}

// TestAnEdgeCacheFollowsItsPoolsChangeStream: a pool whose change stream is down or behind has
// its edges serve and keep nothing of the database until it resumes (not only dropped once, as
// an invalidation would: an answer read from the origin meanwhile is not kept either), an edge
// that connects meanwhile hears it before it holds a lease, and an answer an edge serves after
// the time the stream vouched for is counted as a read served while behind (issue 16).
func TestAnEdgeCacheFollowsItsPoolsChangeStream(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	const ack = 400 * time.Millisecond // a lease renewal every 100 ms
	addr, server := startPoolEnd(t, poolTLS, pool.Config{}, tunnel.ServerConfig{AckTimeout: ack})
	db := pgtest.AppDB
	_, c := edgeCache(t, addr, edgeTLS)
	if !keeps(c, db) {
		t.Fatal("before any change-stream state, the edge does not cache")
	}

	server.StreamCurrentUntil(db, time.Now().Add(time.Minute))
	server.SuspendStream(db) // returns once the edge applied it
	if keeps(c, db) {
		t.Error("suspended, the edge keeps and serves an answer")
	}
	_, late := edgeCache(t, addr, edgeTLS)
	if keeps(late, db) {
		t.Error("an edge that connected while the stream was suspended keeps and serves an answer")
	}

	server.ResumeStream(db)
	if !keeps(c, db) || !keeps(late, db) {
		t.Error("resumed, an edge does not cache again")
	}
	if n := c.DBStats()[db].ReadsBehind; n != 0 {
		t.Errorf("%d reads counted as served behind while the stream vouched for them", n)
	}

	// The stream vouches no further (its probes unreached): once a lease renewal brings that
	// to the edge, what it serves is counted.
	server.StreamCurrentUntil(db, time.Now())
	if !within(5*time.Second, func() bool { keeps(c, db); return c.DBStats()[db].ReadsBehind > 0 }) {
		t.Error("answers served after the time the stream vouched for are not counted at the edge")
	}

	// Back to max_age (the stream gave up): no limit, nothing counted.
	server.StreamCurrentUntil(db, time.Time{})
	if !within(5*time.Second, func() bool {
		before := c.DBStats()[db].ReadsBehind
		return keeps(c, db) && c.DBStats()[db].ReadsBehind == before
	}) {
		t.Error("without a limit, the edge's answers are still counted as served behind")
	}
}
