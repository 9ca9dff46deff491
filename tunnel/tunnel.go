package tunnel

import (
	"context"
	"fmt"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
)

// Errors a Stream reports, whatever the transport.
var (
	// ErrTerminated follows the client's Terminate message.
	ErrTerminated = pool.ErrTerminated
	// ErrOriginLost means the origin connection broke under the session; nothing is retried.
	ErrOriginLost = pool.ErrOriginLost
	// ErrOriginEnded is the ErrOriginLost of a session whose origin said why it ended the
	// connection (a FATAL, already in the answers): the client needs no error of the edge's.
	ErrOriginEnded = pool.ErrOriginEnded
	// ErrQueueTimeout means no origin connection became free in time.
	ErrQueueTimeout = pool.ErrQueueTimeout
	// ErrPoolLost is the ErrOriginLost of a session whose tunnel to the pool failed under it: the
	// pool end or the connection to it is gone. What was in flight may or may not have run;
	// a read outside a transaction may be sent again over another pool, nothing else.
	ErrPoolLost = fmt.Errorf("%w: the connection to the pool was lost", ErrOriginLost)
)

// Profile is what an edge needs to answer a client's startup without asking the origin:
// the ParameterStatus values the origin reported to the pool's first connection.
type Profile struct {
	Parameters map[string]string
	// Volatility maps function names to the origin's pg_proc.provolatile ('i', 's', 'v'),
	// the most volatile overload of each name; empty when the origin has no such catalog.
	Volatility map[string]byte
	// OriginLatency is the pool's measured round trip to the origin (placement.Prober), which
	// edges use to pick the pool nearest each database; 0 for an embedded origin or a pool that
	// does not measure, negative when the measurement failed.
	OriginLatency time.Duration
	// Related are the relations whose rows change together (views and what they read,
	// partitions, cascading foreign keys) and the tables whose writes may change any (triggers,
	// rules), from the origin's catalog: the edge keeps a cached read under every table whose
	// writes may change it. Zero for an origin without such a catalog.
	Related Related
}

// Related are the relations of an origin whose rows change together (pool.Related).
type Related = pool.Related

// Transport opens client sessions on the pool side for a database.
type Transport interface {
	// Profile returns the origin profile of db, connecting to the origin only if the pool has
	// never reached it.
	Profile(ctx context.Context, db string) (Profile, error)
	// Open starts the pool side of one client session. params are the client's startup
	// parameters (user and database included).
	Open(ctx context.Context, db string, params map[string]string) (Stream, error)
}

// Stream carries one client session between the edge and the pool side as PostgreSQL
// protocol frames. Send and Recv may be called by one goroutine in turns (send a unit, receive
// while Pending) or by two goroutines, one each; Cancel and Close may be called from any
// goroutine.
type Stream interface {
	// Send forwards whole frontend messages, back to back, as read from the client. It returns
	// ErrTerminated after a Terminate message.
	Send(ctx context.Context, frames []byte) error
	// Recv appends the next backend messages for the client to dst and returns it. It blocks
	// until there is something to send.
	Recv(ctx context.Context, dst []byte) ([]byte, error)
	// Pending reports whether answers are due that need no further client message: the edge
	// receives them before it reads the client again. False while the origin waits for COPY data.
	Pending() bool
	// Pinned reports whether the origin may send at any time (LISTEN): the edge then receives
	// continuously, on a goroutine of its own.
	Pinned() bool
	// Skip tells the pool side about client messages the edge answered itself (from its
	// cache): they are not sent, but statements they prepare or close are remembered.
	Skip(frames []byte)
	// Cancel cancels the query the session is running, if any.
	Cancel(ctx context.Context) error
	// Close ends the session and returns its origin connection, if any, to the pool.
	Close() error
}
