package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// flushAt is how much Recv gathers before returning even if the origin has more buffered.
const flushAt = 64 << 10

// Session is the pool side of one client session. See the package documentation for the
// exchange and the concurrency contract.
type Session struct {
	p   *Pool
	log *slog.Logger
	ctx context.Context // ends with the session; bounds leases and cancels

	mu      sync.Mutex
	wake    *sync.Cond // the lease, the queue or closed changed
	conn    *Conn      // leased origin connection, or nil
	queue   []pending  // answers still to come, oldest first, from qhead on
	qhead   int
	popped  uint64 // answers taken off the queue so far
	due     uint64 // answers the client has asked for (up to its last Sync, Flush or Query)
	copyIn  bool   // the origin waits for the client's COPY data
	open    bool   // extended-protocol messages sent since the last Sync (copy of unitOpen)
	sending bool   // Send is between taking the lease and writing: keep the lease
	// cancelPending: a CancelRequest came while Send had not written its unit yet (waiting for
	// an origin connection, say); it is sent once the unit is written, as PostgreSQL would have
	// cancelled the query.
	cancelPending bool
	reading       bool // Recv is blocked reading conn
	closed        bool
	txStatus      byte
	pinned        string // the feature that pins the session to conn, or ""
	rs            resendState
	// saidFatal: the origin's FATAL went to the client, which needs no error of ours after it.
	saidFatal bool

	// settings are the session's (sessionstate.Settings, state.go): a transaction's changes are
	// staged in them, kept at COMMIT, dropped at ROLLBACK.
	settings settings

	stmts map[string]*stmt // the client's named statements; written under mu
	raw   bool             // statement names go to the origin as the client wrote them (statements.go)
	// originSkip: an error in the extended protocol, and no Sync sent since: the origin
	// ignores every message up to the next Sync, and so does Send.
	originSkip    bool
	unnamed       []byte // body of the client's last unnamed Parse
	unnamedGen    uint64
	unnamedEffect classify.Effect
	portals       map[string]classify.Effect // effects of statements bound to portals in this unit

	// Owned by the Send goroutine.
	wbuf     []byte    // frames for the origin
	scratch  []pending // answers this batch draws, before they join the queue
	unitOpen bool      // extended-protocol messages sent since the last Sync
	failed   bool      // the unit failed before reaching the origin: drop messages until Sync
}

// pendingKind is the answer a message draws from the origin.
type pendingKind uint8

const (
	pParse          pendingKind = iota // ParseComplete
	pBind                              // BindComplete
	pClose                             // CloseComplete
	pDescribeStmt                      // ParameterDescription, then RowDescription or NoData
	pDescribePortal                    // RowDescription or NoData
	pExecute                           // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
	pSync                              // ReadyForQuery
	pQuery                             // anything, then ReadyForQuery (simple Query, FunctionCall)
	pSetup                             // our own settings query: swallowed through its ReadyForQuery
)

// pending is one answer the session waits for.
type pending struct {
	kind pendingKind
	// reply, when set, is the answer itself, made up by the session because the message never
	// went to the origin; it goes to the client when the entry reaches the head of the queue.
	reply []byte
	// swallow drops the origin's answer: the session added the message, the client did not ask.
	swallow bool
	// lead marks a message written in front of a unit for the connection's sake (its settings
	// query; on a resend, the statements the new connection lacks): when the unit goes to
	// another connection, its entry goes and that connection gets its own (retry.go).
	lead bool
	// prepared names the server-side statement a Parse creates, so a failure can forget it.
	prepared string
	// unnamed marks a Parse or Close of the unnamed statement (the client's, or one the
	// session adds): what the connection then holds as its unnamed statement depends on
	// whether it ran (errorResponse, skipped).
	unnamed bool
	// held: before the client's Parse of the unnamed statement, the connection held the
	// session's own; should the origin skip the Parse, it still does (skipped).
	held   bool
	effect classify.Effect // what a Query or Execute does to the session when it succeeds
	// stmt is the client's statement a Parse creates, under the name client: forgotten if the
	// Parse fails or is skipped. server and client also name the statement of a Bind or
	// Describe, to put the client's name back into an error.
	stmt           *stmt
	server, client string
	state          string // for pSetup: the settings key the setup applies
	refusal        []byte // for pSetup: the origin's first error, should the setup fail
	failed         bool   // an ErrorResponse arrived for this Query
	copyDone       bool   // the client has sent CopyDone or CopyFail for this statement's COPY
}

// stmt is one of the client's named prepared statements.
type stmt struct {
	server string // name on origin connections, the same for the same text and parameter types
	parse  []byte // Parse body naming server, to prepare it on a connection that lacks it
	effect classify.Effect
}

// NewSession starts the pool side of a client session. params are the client's startup
// parameters; profile values the client merely repeats are left out of its settings.
func (p *Pool) NewSession(ctx context.Context, params map[string]string) *Session {
	p.mu.Lock()
	profile := p.profile
	p.mu.Unlock()
	s := &Session{
		p:        p,
		log:      p.log,
		ctx:      ctx,
		txStatus: 'I',
		stmts:    make(map[string]*stmt),
		settings: startupSettings(params, profile),
	}
	s.wake = sync.NewCond(&s.mu)
	return s
}

// Send forwards a run of whole client messages. It leases an origin connection when the
// session has none, prepares on it what the messages need, and writes them. An error other
// than ErrTerminated ends the session.
func (s *Session) Send(ctx context.Context, frames []byte) error {
	c, skip, mayResend, err := s.startSend()
	if err != nil {
		return err
	}
	s.wbuf = s.wbuf[:0]
	b := s.build(ctx, c, frames, skip)
	s.enqueue(&b, mayResend)
	if err := s.write(b.c); err != nil {
		return err
	}
	if b.terminated {
		return link.ErrTerminated
	}
	return nil
}

// batch is what Send makes of one run of client messages.
type batch struct {
	c          *Conn     // the origin connection it goes to (leased by build if need be)
	entries    []pending // the answers it draws
	flushed    int       // entries up to here are due: the client waits for their answers
	terminated bool      // the client sent Terminate
	copyDone   bool      // the batch ends a COPY FROM STDIN
	markQueued bool      // ...of a statement sent in an earlier batch
	synced     bool      // the batch holds a Sync
	copyData   bool      // the batch holds COPY data: it cannot be sent again
}

// startSend marks the session as sending and returns its connection, whether the origin skips
// messages up to the next Sync, and whether the unit may be sent again should the connection
// turn out closed by the origin (retry.go).
func (s *Session) startSend() (c *Conn, skip, mayResend bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, false, link.ErrClosed
	}
	s.sending, s.cancelPending = true, false // a cancel of an earlier unit is not this one's
	c, skip = s.conn, s.originSkip
	return c, skip, c == nil && s.pinned == "" && s.queued() == 0 && !skip, nil
}

// build appends the origin's version of frames to s.wbuf and returns the batch: the answers
// it draws, and what the client waits for. It leases a connection when c is nil.
func (s *Session) build(ctx context.Context, c *Conn, frames []byte, skip bool) batch {
	b := batch{c: c, entries: s.scratch[:0], flushed: -1}
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		if f.Type == 'X' {
			b.terminated = true
			break
		}
		if skip && f.Type != 'S' {
			continue // the origin ignores it after an error, up to the Sync: so do we
		}
		if f.Type == 'S' {
			skip, b.synced = false, true
		}
		if s.failed {
			if f.Type == 'S' {
				s.failed, s.unitOpen = false, false
				b.entries = append(b.entries, pending{kind: pSync, reply: pgwire.AppendReadyForQuery(nil, 'I')})
				b.flushed = len(b.entries)
			}
			continue
		}
		if b.c == nil {
			var err error
			if b.c, err = s.lease(ctx); err != nil {
				b.entries = s.refuse(b.entries, f.Type, err)
				if !s.failed {
					b.flushed = len(b.entries)
				}
				continue
			}
		}
		if !s.unitOpen && startsUnit(f.Type) {
			b.entries = s.syncSettings(b.c, b.entries)
		}
		b.entries = s.forward(b.c, f, b.entries)
		switch f.Type {
		case 'S', 'H', 'Q', 'F':
			b.flushed = len(b.entries)
		case 'c', 'f':
			b.flushed, b.copyDone = len(b.entries), true
			b.markQueued = !markCopyDone(b.entries) || b.markQueued
		case 'd':
			b.copyData = true
		}
	}
	if s.failed {
		b.flushed = len(b.entries) // made-up answers are due at once
	}
	return b
}

// enqueue adds a batch's answers to the queue and says which of them are due; the unit is
// armed to be sent again when mayResend and the batch allow it.
func (s *Session) enqueue(b *batch, mayResend bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.originSkip {
		// An error came while this batch was built: the origin skips it up to its Sync.
		var dropped int
		b.entries, dropped = s.dropSkipped(b.c, b.entries, b.synced)
		b.flushed = max(b.flushed-dropped, min(b.flushed, 0))
	}
	if b.synced {
		s.originSkip = false
	}
	if b.flushed >= 0 {
		s.due = s.popped + uint64(s.queued()+b.flushed)
	}
	if b.copyDone {
		s.copyIn = false
	}
	if b.markQueued {
		markCopyDone(s.queue[s.qhead:])
	}
	s.queue = append(s.queue, b.entries...)
	clear(b.entries)
	s.scratch = b.entries[:0]
	s.open = s.unitOpen
	s.armResend(mayResend && !b.copyData && b.c != nil && !b.copyDone && !b.terminated, s.wbuf)
	s.wake.Broadcast()
}

// write sends s.wbuf to c and ends the Send. An error means the origin connection is lost,
// unless the unit is armed to be sent again: Recv then finds the connection closed.
func (s *Session) write(c *Conn) error {
	var werr error
	if len(s.wbuf) > 0 {
		if _, err := c.nc.Write(s.wbuf); err != nil {
			werr = fmt.Errorf("%w: %w", link.ErrOriginLost, err)
		}
	}
	if cap(s.wbuf) > 1<<20 {
		s.wbuf = nil // don't keep a large COPY buffer for an idle session
	}
	s.mu.Lock()
	s.sending = false
	s.wake.Broadcast() // a resend may wait for this write (retry.go)
	cancelNow := werr == nil && s.cancelPending
	s.cancelPending = false
	if werr != nil {
		c.broken = true
		if s.rs.armed {
			werr = nil // Recv finds the connection closed, and sends the unit again
		}
	} else {
		s.maybeRelease()
	}
	s.mu.Unlock()
	if cancelNow {
		// Before Send returns, so before its answers are read: c is still this session's, and
		// the cancel can reach no other session's query.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.cancel(ctx)
		cancel()
	}
	return werr
}

// markCopyDone marks the last Query or Execute in entries as having had its COPY data sent, so
// that its CopyInResponse, when it comes, does not wait for the client. It reports whether
// entries held one.
func markCopyDone(entries []pending) bool {
	for i := len(entries) - 1; i >= 0; i-- {
		if k := entries[i].kind; k == pQuery || k == pExecute {
			entries[i].copyDone = true
			return true
		}
	}
	return false
}

// startsUnit reports whether a message can begin a unit of work (COPY data can't: it belongs
// to the statement that started the COPY).
func startsUnit(typ byte) bool {
	switch typ {
	case 'd', 'c', 'f':
		return false
	}
	return true
}

// lease takes an origin connection for the unit that starts now.
func (s *Session) lease(ctx context.Context) (*Conn, error) {
	c, err := s.p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.p.Release(c)
		return nil, link.ErrClosed
	}
	s.conn = c
	s.wake.Broadcast()
	s.mu.Unlock()
	return c, nil
}

// refuse answers a message that could not reach the origin: the client gets the error now,
// and ReadyForQuery at the end of its unit.
func (s *Session) refuse(entries []pending, typ byte, err error) []pending {
	e := pgwire.Fatal(pgwire.ConnectionFailure, "could not connect to the origin database")
	e.Severity = "ERROR"
	var oe *link.OriginError
	switch {
	case errors.As(err, &oe):
		// The origin's own meaning (origin.go): a changed password is not a network fault.
		e.Message += ": " + oe.Error()
		switch oe.Refusal {
		case link.OriginLoginRefused:
			e.Code = pgwire.InvalidPassword
		case link.OriginNoDatabase:
			e.Code = pgwire.InvalidCatalogName
		}
	case errors.Is(err, link.ErrQueueTimeout):
		e = &pgwire.Error{Severity: "ERROR", Code: pgwire.TooManyConnections,
			Message: "no origin connection became free within the queue timeout"}
	case errors.Is(err, link.ErrClosed), errors.Is(err, context.Canceled):
		e = &pgwire.Error{Severity: "FATAL", Code: pgwire.AdminShutdown, Message: "slipstream is shutting down"}
	case errors.Is(err, ErrNoCredential):
		e.Message = "database " + s.p.cfg.Name + ": " + ErrNoCredential.Error()
	}
	entries = append(entries, pending{kind: pQuery, reply: pgwire.AppendError(nil, e)})
	switch typ {
	case 'Q', 'F':
		entries = append(entries, pending{kind: pQuery, reply: pgwire.AppendReadyForQuery(nil, 'I')})
	case 'S':
		entries = append(entries, pending{kind: pSync, reply: pgwire.AppendReadyForQuery(nil, 'I')})
	default:
		s.failed = true
	}
	return entries
}
