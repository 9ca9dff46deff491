// Package tunnel carries client sessions from the edge to the pool side.
//
// Start reading at Transport and Stream (tunnel.go): the edge asks a Transport for a database's
// origin profile, to answer a client's startup itself, and opens one Stream per client session.
// A Stream moves PostgreSQL protocol frames: Send takes what the client wrote, Recv returns what
// the client must read. Local (local.go) is the in-process transport of `slipstream serve`,
// where a Stream is the pool's session itself; a QUIC transport between regions implements the
// same two interfaces, so the edge's session code does not change.
//
//	edge session            Stream                pool side
//	 │ Open(db, params) ─────>│──────────────────────>│ new session, no origin I/O
//	 │ Send(frames) ─────────>│──────────────────────>│ lease, forward
//	 │ Recv() <───────────────│<──────────────────────│ answers, unit by unit
//	 │ Cancel() ─────────────>│──────────────────────>│ CancelRequest to the origin
//	 │ Close() ──────────────>│──────────────────────>│ connection back to the pool
//
// Concurrency: see Stream. The tunnel interprets no SQL.
package tunnel
