package proxy

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
)

// observedConn is a PostgreSQL client's connection after startup, watched for the query
// insights and the admin console: it follows the messages both ways (Query, Parse, Bind and
// Sync in; CommandComplete, ErrorResponse and ReadyForQuery out) and reports each unit of work
// to the insight Recorder when its ReadyForQuery is written. The session itself reads and writes
// through it unchanged; watching copies at most a unit's query text.
//
// Read runs on the session's reader goroutine, Write on whichever goroutine writes to the
// client; the unit queue between them is under mu, and so is what SHOW CLIENTS reads.
type observedConn struct {
	net.Conn
	rec  *insight.Recorder
	info ClientInfo // fixed at startup

	in, out frameScanner

	mu      sync.Mutex
	stmts   map[string]string // prepared statement -> text, to name the query of a Bind
	cur     pendingUnit       // the unit the client is sending
	queue   []pendingUnit     // units sent, waiting for their ReadyForQuery
	lastEnd time.Time         // when the last ReadyForQuery went out
	tx      byte              // the transaction status of the last ReadyForQuery
	txStart time.Time         // when the open transaction block began
	request time.Time         // when the client last sent a unit
}

// pendingUnit is a unit of work between its first message and its ReadyForQuery.
type pendingUnit struct {
	start          time.Time
	query          string
	received, sent int64
	parses, binds  int
	runs           bool // a Query or an Execute: the unit ran its statement, not only prepared it
	rows           int64
	statements     int
	failed         bool
	status         cache.Status
}

// maxStatements bounds the prepared statements remembered per client for naming Binds.
const maxStatements = 1024

func newObservedConn(nc net.Conn, rec *insight.Recorder, info ClientInfo) *observedConn {
	return &observedConn{Conn: nc, rec: rec, info: info, stmts: make(map[string]string), tx: 'I'}
}

func (c *observedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		now := time.Now()
		c.mu.Lock()
		c.cur.received += int64(n)
		c.in.feed(p[:n], func(typ byte, body []byte) { c.clientMessage(typ, body, now) })
		c.mu.Unlock()
	}
	return n, err
}

func (c *observedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		now := time.Now()
		c.mu.Lock()
		if len(c.queue) > 0 {
			c.queue[0].sent += int64(n)
		}
		c.out.feed(p[:n], func(typ byte, body []byte) { c.serverMessage(typ, body, now) })
		c.mu.Unlock()
	}
	return n, err
}

// clientMessage follows one message from the client. c.mu is held.
func (c *observedConn) clientMessage(typ byte, body []byte, now time.Time) {
	if c.cur.start.IsZero() {
		c.cur.start = now
	}
	switch typ {
	case 'E':
		c.cur.runs = true
	case 'Q':
		c.cur.runs = true
		if c.cur.query == "" {
			c.cur.query = cstring(body)
		}
		c.endUnit(now)
	case 'P':
		c.cur.parses++
		name := cstring(body)
		q := cstring(body[min(len(name)+1, len(body)):])
		if c.cur.query == "" {
			c.cur.query = q
		}
		if len(c.stmts) < maxStatements || name == "" {
			c.stmts[name] = q
		}
	case 'B':
		c.cur.binds++
		portalLen := len(cstring(body)) + 1
		if portalLen <= len(body) && c.cur.query == "" {
			c.cur.query = c.stmts[cstring(body[portalLen:])]
		}
	case 'C':
		if len(body) > 0 && body[0] == 'S' {
			delete(c.stmts, cstring(body[1:]))
		}
	case 'S':
		c.endUnit(now)
	}
}

// endUnit queues the unit the client has finished sending. c.mu is held.
func (c *observedConn) endUnit(now time.Time) {
	c.request = c.cur.start
	c.queue = append(c.queue, c.cur)
	c.cur = pendingUnit{}
}

// serverMessage follows one message to the client. c.mu is held.
func (c *observedConn) serverMessage(typ byte, body []byte, now time.Time) {
	if len(c.queue) == 0 {
		return
	}
	u := &c.queue[0]
	switch typ {
	case 'C':
		u.statements++
		u.rows += tagRows(body)
	case 'E':
		u.failed = true
	case 'Z':
		status := byte('I')
		if len(body) > 0 {
			status = body[0]
		}
		c.finish(*u, status, now)
		c.queue = c.queue[1:]
	}
}

// finish reports a unit whose ReadyForQuery (with transaction status tx) was written. c.mu
// is held.
func (c *observedConn) finish(u pendingUnit, tx byte, now time.Time) {
	start := u.start
	if start.Before(c.lastEnd) {
		start = c.lastEnd // pipelined: it waited for the units before it
	}
	c.lastEnd = now
	if !u.runs {
		u.query = "" // a Parse and Describe: counted in the totals, not as a call of its shape
	}
	iu := insight.Unit{DB: c.info.Database, Protocol: insight.Postgres, Query: u.query, Start: start, Duration: now.Sub(start),
		Rows: u.rows, Statements: u.statements, Status: u.status, Failed: u.failed, Received: u.received, Sent: u.sent,
		Parses: u.parses, Binds: u.binds}
	switch {
	case c.tx == 'I' && tx == 'I' && u.statements > 0:
		iu.Xacts, iu.XactTime = 1, iu.Duration
	case c.tx == 'I' && tx != 'I':
		c.txStart = start
	case c.tx != 'I' && tx == 'I':
		iu.Xacts, iu.XactTime = 1, now.Sub(c.txStart)
	}
	c.tx = tx
	c.rec.Observe(iu)
}

// noteStatus records how the cache treated the unit being answered.
func (c *observedConn) noteStatus(st cache.Status) {
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].status = st
	}
	c.mu.Unlock()
}

// ClientInfo describes one client session, for the admin console's SHOW CLIENTS.
type ClientInfo struct {
	// ID is the session's id: the process id of its BackendKeyData (PostgreSQL) or its
	// connection id (MySQL), as KILL_CLIENT takes it.
	ID                  uint32
	Protocol            string
	User, Database      string
	ApplicationName     string
	Addr, LocalAddr     net.Addr
	TLS                 bool
	ConnectTime         time.Time
	RequestTime         time.Time // when it last sent a unit of work; zero if never
	InTransaction, Busy bool
	PreparedStatements  int
}

func (c *observedConn) snapshot() ClientInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci := c.info
	ci.RequestTime = c.request
	ci.InTransaction = c.tx != 'I'
	ci.Busy = len(c.queue) > 0
	ci.PreparedStatements = len(c.stmts)
	return ci
}

// cstring returns b up to its first NUL (all of b if none).
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// tagRows returns the row count of a CommandComplete tag ("SELECT 5", "INSERT 0 3"); 0 if none.
func tagRows(body []byte) int64 {
	tag := body
	if i := bytes.IndexByte(tag, 0); i >= 0 {
		tag = tag[:i]
	}
	sp := bytes.LastIndexByte(tag, ' ')
	if sp < 0 {
		return 0
	}
	n, err := strconv.ParseInt(string(tag[sp+1:]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// cacheStatus counts how the cache treated the session's unit, in the metrics and for its
// insights.
func (sess *session) cacheStatus(st cache.Status) {
	sess.s.m.cacheStatus(sess.db, st)
	if oc, ok := sess.nc.(*observedConn); ok {
		oc.noteStatus(st)
	}
}

// frameScanner follows PostgreSQL frames (type byte, int32 length, body) across the chunks a
// connection reads or writes, and hands each message of a type it keeps to a callback with at
// most keepBytes of its body: enough for a query text, never a whole large message.
type frameScanner struct {
	hdr    [5]byte
	nhdr   int
	remain int // body bytes of the current message not seen yet
	body   []byte
}

// keepBytes bounds what a frameScanner copies of one message's body.
const keepBytes = 16 << 10

// kept says which message types' bodies a scanner keeps and reports: from the client Query,
// Parse, Bind, Close, Execute, Sync; to it CommandComplete, ErrorResponse, ReadyForQuery. A
// letter means one thing in each direction ('C' is Close in, CommandComplete out; 'E'
// Execute in, ErrorResponse out), and each direction's handler reads it its way.
func kept(typ byte) bool {
	switch typ {
	case 'Q', 'P', 'B', 'C', 'S', 'E', 'Z':
		return true
	}
	return false
}

func (f *frameScanner) feed(p []byte, msg func(typ byte, body []byte)) {
	for len(p) > 0 {
		if f.nhdr < 5 {
			n := copy(f.hdr[f.nhdr:], p)
			f.nhdr += n
			p = p[n:]
			if f.nhdr < 5 {
				return
			}
			l := int(uint32(f.hdr[1])<<24 | uint32(f.hdr[2])<<16 | uint32(f.hdr[3])<<8 | uint32(f.hdr[4]))
			f.remain = max(l-4, 0)
			f.body = f.body[:0]
			if f.remain == 0 {
				f.done(msg)
				continue
			}
		}
		n := min(f.remain, len(p))
		if kept(f.hdr[0]) && len(f.body) < keepBytes {
			f.body = append(f.body, p[:min(n, keepBytes-len(f.body))]...)
		}
		f.remain -= n
		p = p[n:]
		if f.remain == 0 {
			f.done(msg)
		}
	}
}

func (f *frameScanner) done(msg func(typ byte, body []byte)) {
	if kept(f.hdr[0]) {
		msg(f.hdr[0], f.body)
	}
	f.nhdr = 0
	if cap(f.body) > keepBytes*2 {
		f.body = nil
	}
}

// observe wraps a client's connection after its startup, when the server keeps insights.
func (s *Server) observe(st *startup) {
	if s.cfg.Insight == nil {
		return
	}
	st.nc = newObservedConn(st.nc, s.cfg.Insight, ClientInfo{Protocol: ProtocolPostgres, User: st.params["user"],
		Database: st.db.Name, ApplicationName: st.params["application_name"], Addr: st.nc.RemoteAddr(),
		LocalAddr: st.nc.LocalAddr(), TLS: st.tls, ConnectTime: time.Now()})
}
