package link

import "context"

// Transport opens client sessions on the pool side for a database.
type Transport interface {
	// Profile returns the origin profile of db, connecting to the origin only if the pool has
	// never reached it.
	Profile(ctx context.Context, db string) (Profile, error)
	// Open starts the pool side of one client session. params are the client's startup
	// parameters (user and database included).
	Open(ctx context.Context, db string, params map[string]string) (Stream, error)
}

// Origin is the pool side of one database, whatever protocol it speaks: what a transport's
// pool end calls to answer Profile and Open for that database.
type Origin interface {
	// Profile returns the origin profile, connecting to the origin only if it never has.
	Profile(ctx context.Context) (Profile, error)
	// Open starts the pool side of one client session; params are the client's startup
	// parameters.
	Open(ctx context.Context, params map[string]string) (Stream, error)
}

// Stream carries one client session between the edge and the pool side as protocol frames
// (PostgreSQL messages, or MySQL packets). Send and Recv may be called by one goroutine in turns
// (send a unit, receive while Pending) or by two goroutines, one each; Cancel and Close may be
// called from any goroutine.
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
	// Caps says what the stream's pool end does beyond carrying frames.
	Caps() Caps
}
