// Package link is the contract between the edge and the pool side of Slipstream: what one end
// asks of the other, whatever carries it. The edge (proxy) opens a Stream per client session
// on a Transport; the pool side serves each database as an Origin; an origin's Profile lets
// the edge answer a client's startup without asking the origin; the errors say how a session
// or a connection ended.
//
//	proxy (edge) ──Transport.Open──> Stream ─────────────> Origin.Open (pool, pool/mysql)
//	              tunnel.Local (one process) or tunnel.Client ··QUIC··> tunnel.Server
//
// The package is a leaf: it imports nothing of Slipstream's, and tunnel, pool, pool/mysql and
// proxy all import it, so that the tunnel stays a transport and neither the tunnel nor a pool
// imports the other.
//
// Start reading at Stream (stream.go), then Profile (profile.go) and the errors (errors.go).
package link
