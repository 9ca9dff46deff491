package proxy

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// mysqlConns hands out the edge's MySQL connection ids (the handshake's thread id, what a
// client passes to KILL) and maps them to live sessions. The ids are the edge's own: a KILL
// reaches only a session of this edge, which forwards it to whichever origin connection runs
// its query at that moment.
type mysqlConns struct {
	mu   sync.Mutex
	m    map[uint32]*mysqlSession
	next uint32
}

// add registers sess under a fresh id and returns the id.
func (c *mysqlConns) add(sess *mysqlSession) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start()
	for {
		c.next++
		if c.next >= 1<<31 {
			c.next = 1 << 30
		}
		if _, taken := c.m[c.next]; !taken {
			c.m[c.next] = sess
			return c.next
		}
	}
}

// start makes the map and picks the first id, once; c.mu is held.
func (c *mysqlConns) start() {
	if c.m == nil {
		c.m = make(map[uint32]*mysqlSession)
		// Far from the small numbers origins hand out, so that a KILL of an origin's
		// CONNECTION_ID() finds no session rather than another client's; below 1<<31 for
		// clients that keep the id in a signed 32-bit integer.
		c.next = 1<<30 + rand.Uint32N(1<<29)
	}
}

func (c *mysqlConns) remove(id uint32) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// live returns the session with id, if it has finished its connection phase.
func (c *mysqlConns) live(id uint32) *mysqlSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sess := c.m[id]; sess != nil && sess.ready.Load() {
		return sess
	}
	return nil
}

// kill answers KILL [QUERY] id. A client may kill its own user's sessions on the same
// database; others look like unknown ids, so nobody learns about other tenants' sessions.
func (sess *mysqlSession) kill(ctx context.Context, id uint32, query bool) bool {
	target := sess.s.myConns.live(id)
	var stream link.Stream
	if target != nil {
		var db, user string
		db, user, stream = target.identity()
		if db != sess.db.Name || user != sess.user {
			target = nil
		}
	}
	if target == nil {
		sess.s.m.cancels.WithLabelValues("unknown_key").Inc()
		return sess.writeError(mysqlwire.Errorf(mysqlwire.ErNoSuchThread, id))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !query {
		if target != sess {
			// Its query too, or the origin would go on running it for nobody.
			target.stopQuery(ctx)
			target.end(nil, true)
		} else {
			defer target.end(nil, true) // after the OK
		}
		return sess.write(mysqlwire.AppendOK(nil, sess.seq, sess.status)) && target != sess
	}
	if err := stream.Cancel(cctx); err != nil {
		sess.s.m.cancels.WithLabelValues("failed").Inc()
		sess.log.Warn("KILL QUERY failed", "err", err)
		return sess.writeError(mysqlwire.NewError(mysqlwire.ErUnknown, "KILL QUERY could not reach the origin database"))
	}
	sess.s.m.cancels.WithLabelValues("sent").Inc()
	return sess.write(mysqlwire.AppendOK(nil, sess.seq, sess.status))
}

// parseKill recognizes `KILL [HARD|SOFT] [CONNECTION|QUERY] id`, with an optional `;`. Other
// KILL forms (KILL QUERY ID, KILL USER) go to the origin.
func parseKill(q []byte) (id uint32, query bool, ok bool) {
	q = bytes.TrimLeft(q, " \t\r\n")
	// Every query passes here: look at four bytes before allocating anything.
	if len(q) < 6 || len(q) > 256 || !bytes.EqualFold(q[:4], []byte("kill")) {
		return 0, false, false
	}
	f := strings.Fields(strings.TrimRight(strings.TrimSpace(string(q)), "; \t\r\n"))
	if len(f) < 2 || !strings.EqualFold(f[0], "KILL") {
		return 0, false, false
	}
	f = f[1:]
	if len(f) > 1 && (strings.EqualFold(f[0], "HARD") || strings.EqualFold(f[0], "SOFT")) {
		f = f[1:]
	}
	if len(f) > 1 && (strings.EqualFold(f[0], "QUERY") || strings.EqualFold(f[0], "CONNECTION")) {
		query = strings.EqualFold(f[0], "QUERY")
		f = f[1:]
	}
	if len(f) != 1 {
		return 0, false, false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return uint32(n), query, true
}
