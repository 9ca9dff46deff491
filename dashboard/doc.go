// Package dashboard is the live web page an operator keeps open on a second screen: one HTML
// file with its CSS and JavaScript inline, embedded in the binary (no external assets, no
// build step). The page polls /api/overview every second (package admin serves it) and draws
// throughput, p50/p99 latency, the cache hit ratio and why misses were not cached, origin
// connections and waiting clients per database, the top query shapes, and the tunnels and
// pools with their RTT.
//
// Start reading at Handler. It holds no state; it is safe for concurrent use.
package dashboard
