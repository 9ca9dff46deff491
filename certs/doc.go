// Package certs makes and loads Slipstream's TLS material, in one place for both kinds:
//
//   - the server certificate clients see on the PostgreSQL and MySQL listeners (server.go):
//     files the operator names, or a self-signed pair created once in the data directory, as
//     LoadOrCreate does;
//   - a deployment's certificates for the tunnel between edges and pools (deployment.go): a CA
//     and one certificate per node role that it signs, as CreateDeployment writes them and
//     LoadNode reads them.
//
// Both kinds are ECDSA P-256, valid for ten years, written with the key first (mode 0600) and
// never over an existing file (files.go), so two processes starting at once can't mix pairs.
//
// The package builds no tls.Config: the protocols do (protocol/pgwire's ServerTLSConfig for
// clients, tunnel's LoadTLS for mutual TLS between nodes), since what a handshake checks is
// theirs. It holds no state; every function is safe for concurrent use.
package certs
