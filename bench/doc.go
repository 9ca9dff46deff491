// Package bench is Slipstream's benchmarking harness: a WAN simulator, workloads that measure
// latency and throughput directly against a database and through Slipstream, and the reports
// (terminal table, JSON, SVG chart) they produce.
//
// Start reading at Relay (relay.go), the WAN simulator: it listens on one address and forwards
// TCP connections or UDP datagrams to another, adding half a chosen round-trip time in each
// direction, because these machines have no netem. Tests elsewhere start one with StartRelay
// to put a round trip between two processes.
//
//	client ── TCP/UDP ──> Relay ─── +RTT/2 ───> target
//	client <── TCP/UDP ── Relay <── +RTT/2 ──── target
//
// Latency (latency.go) runs back-to-back point reads with a new connection per query (the
// serverless shape) and on one persistent connection, directly and through Slipstream
// uncached and cached; Throughput (throughput.go) runs N clients for a duration. Topology
// (topology.go) stands a whole deployment up on one machine: the origin behind a relay for
// the direct path, Slipstream next to it for the path through the proxy.
//
// Throughput also says what each proxy costs (procstat.go): CPU time per operation and
// resident memory per idle client from /proc, system calls per operation from strace -c -f
// in a separate untimed run. The proxy is a peer that peers.go started (PgBouncer,
// pgpool-II, HAProxy in TCP mode) or the process listening on the target's loopback port.
//
// bench must not be imported by the product: only cmd/slipstream (the `slipstream bench`
// commands) and tests use it.
//
// Concurrency: a Relay is safe for concurrent use; Close may be called from any goroutine,
// any number of times. Each run function owns the goroutines it starts and waits for them
// before it returns.
package bench
