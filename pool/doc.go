// Package pool owns the connections to one origin database and runs the pool side of every
// client session: it leases an origin connection for each unit of work, makes the connection
// look like the client's own (prepared statements, session settings) and forwards raw protocol
// messages both ways.
//
// Start reading at Session: Send takes a client's messages, Recv hands back what the client
// must see. Pool (pool.go) dials the connections and Slots (slots.go) keeps them: a bounded
// number per database, handed out in FIFO order to waiting sessions, recycled when idle or old,
// dropped when broken. Package mysqlpool keeps its connections in Slots too, keyed by what each
// was opened with; SlotMetrics (slotmetrics.go) counts both under their own names.
//
//	edge                        Session                       origin connection
//	 │ Send(Parse S1, Bind S1,    │                               │
//	 │      Execute, Sync)        │ lease (queue if all busy)     │
//	 │───────────────────────────>│ settings differ? RESET ALL…   │
//	 │                            │ S1 unknown here? Parse ss_…   │
//	 │                            │ Bind ss_…, Execute, Sync ────>│
//	 │ Recv                       │<── ParseComplete (swallowed)  │
//	 │<── ParseComplete (made up) │<── BindComplete, DataRow…,    │
//	 │<── BindComplete, DataRow…  │    CommandComplete, Ready(I)  │
//	 │<── ReadyForQuery           │ idle and not pinned: release  │
//
// Origins whose credentials rotate (PlanetScale) give the pool a CredentialSource
// (credential.go): each new connection opens with the current Credential and is counted on it;
// once the source retires that credential, its idle connections close at once and leased ones
// when released (never mid-transaction or pinned), so the source can delete it when Drained.
//
// Every message a session sends that draws an answer leaves an entry in its queue of pending
// answers; Recv matches the origin's answers against that queue. That is how the pool answers
// for a Parse it did not need to send, drops the answer to a Parse it added, knows when the unit
// is over, and knows that after an error the origin skips everything up to the next Sync.
//
// Settings (state.go, recv.go): a session's settings are a sessionstate.Settings, the type the
// edge keeps too: its startup values, the SETs in force, and a transaction's SETs staged until
// COMMIT (dropped at ROLLBACK); their Replay names what a connection holds (Conn.state).
//
// Faults (health.go, retry.go, fault.go): Slots never hands out an idle connection the origin
// closed (Dead: a non-blocking peek at its socket), and its reaper drops such connections each
// second. A unit that went out on a connection the origin closed before answering any statement
// of it is sent again on another, after what that one lacks (settings, statements); the
// origin's FATAL is held until the unit is past that point. A session whose connection ends
// otherwise gets the origin's FATAL as sent and ErrOriginEnded, and the edge ends the client's
// connection after it.
//
// Roles (roles.go, rolelogin.go): a database that lets any role of the origin log in has a
// Pool per role, made on the role's first session, whose connections log in as the role with
// the ClientKey its client's SCRAM proof revealed at the edge (or its md5 verifier); the
// verifiers are looked up with auth_query by the origin URL's user and kept in memory only.
//
// Concurrency: a Session's Send and Recv are called in turns by one goroutine (the edge's
// session), or by two once the session is pinned (the edge's reader and its writer pump);
// Cancel and Close may be called from anywhere. The session's mutex guards the queue,
// the lease and the session state; neither pump holds it across network I/O. An origin
// connection belongs to at most one session at a time, and only that session's Recv reads it.
//
// The pool never accepts client connections and knows nothing of caches or the edge.
package pool
