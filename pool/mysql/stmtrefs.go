package mysqlpool

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// stmtRefs counts, per statement key (database and text), the client statements of all the
// pool's sessions that use it. An origin connection's statement whose key no client
// statement uses any more is closed on the origin the next time a session writes on that
// connection (sweep), so that a client that prepares and closes in a loop leaves nothing
// behind, as on a direct connection: the origin's max_prepared_stmt_count counts every
// connection's statements together. A statement still in use stays prepared on each
// connection that has it, up to limit per connection (least recently used closed first), a
// share of max_prepared_stmt_count, so that the pool's connections together stay under it.
type stmtRefs struct {
	mu sync.Mutex
	n  map[string]int
	// gen moves when a count drops to zero: a connection swept at this generation has
	// nothing more to close.
	gen atomic.Uint64
	// limit is the statements one origin connection may hold (at most maxPrepared).
	limit atomic.Int32
}

func newStmtRefs() *stmtRefs {
	r := &stmtRefs{n: make(map[string]int)}
	r.limit.Store(maxPrepared)
	return r
}

// add notes a client statement using key.
func (r *stmtRefs) add(key string) {
	r.mu.Lock()
	r.n[key]++
	r.mu.Unlock()
}

// drop notes that a client statement using key is gone.
func (r *stmtRefs) drop(key string) {
	r.mu.Lock()
	if r.n[key]--; r.n[key] <= 0 {
		delete(r.n, key)
		r.gen.Add(1)
	}
	r.mu.Unlock()
}

// sweep appends a COM_STMT_CLOSE (which draws no answer) for each of c's statements no client
// statement uses, and forgets them. c belongs to the caller's session.
func (r *stmtRefs) sweep(c *originConn, b []byte) []byte {
	gen := r.gen.Load()
	if c.sweptGen == gen {
		return b
	}
	r.mu.Lock()
	for key, os := range c.prepared {
		if r.n[key] == 0 {
			b = appendCommand(b, mysql.COM_STMT_CLOSE, le32(os.id))
			delete(c.prepared, key)
		}
	}
	r.mu.Unlock()
	c.sweptGen = gen
	return b
}

// room appends COM_STMT_CLOSE for c's least recently used statements until c holds fewer than
// the limit, so that one more may be prepared there.
func (r *stmtRefs) room(c *originConn, b []byte) []byte {
	for len(c.prepared) >= int(r.limit.Load()) && len(c.prepared) > 0 {
		b = c.evictOldest(b)
	}
	return b
}

// setLimit shares the origin's max_prepared_stmt_count (value as read) out between conns
// connections (0: the default 20), one less each for the statement the pool prepares itself
// on a connection (a client's statement moved there) before it evicts one.
func (r *stmtRefs) setLimit(value string, conns int) {
	if conns <= 0 {
		conns = 20
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 {
		return
	}
	per := n/conns - 1
	r.limit.Store(int32(min(max(per, 1), maxPrepared)))
}

// probeStmtLimit reads the origin's max_prepared_stmt_count on c (the pool's first
// connection) and sets the per-connection limit from it.
func (p *Pool) probeStmtLimit(c *originConn) {
	if c.write(appendCommand(nil, mysql.COM_QUERY, []byte("SELECT @@max_prepared_stmt_count"))) != nil {
		return
	}
	var pr parser
	pr.reset(rQuery, c.deprecateEOF)
	var value string
	var buf []byte
	for i := 0; !pr.done(); i++ {
		var at int
		var err error
		if buf, at, err = c.readPacket(buf[:0]); err != nil {
			c.broken = true
			return
		}
		pl := buf[at:]
		if err := pr.feed(pl); err != nil {
			c.broken = true
			return
		}
		// Column count, definition, EOF (unless deprecated), then the row.
		rowAt := 3
		if c.deprecateEOF {
			rowAt = 2
		}
		if i == rowAt && !pr.done() && len(pl) > 0 && pl[0] < 0xfb {
			value = string(pl[1 : 1+min(int(pl[0]), len(pl)-1)])
		}
	}
	if !pr.failed {
		p.stmts.setLimit(value, p.cfg.MaxConns)
	}
}
