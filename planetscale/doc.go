// Package planetscale is Slipstream's client of the PlanetScale API and the rotation of the
// database credentials it mints: a PlanetScale user gives a service token and a branch
// (planetscale://ORG/DATABASE/BRANCH), and never handles a database password.
//
// Start reading at Client (client.go: the base URL https://api.planetscale.com/v1, the
// Authorization header ID:SECRET, pagination, 429 with Retry-After and 5xx retried with
// exponential backoff and full jitter, the API's error body in every message), then Resolve
// (databases.go: the organization, database and branch exist, and the database's kind), Mint,
// Renew and Delete (credentials.go: MySQL passwords, Postgres roles), and Rotator (rotation.go).
//
// A Rotator keeps one pool supplied with a valid credential (pool.CredentialSource):
//
//	StartRotator ── Mint ──> credential 1 ── pool dials with it
//	   2/3 of the TTL later: Mint ──> credential 2; credential 1 retired:
//	      its idle origin connections close now, leased ones when released
//	      (never mid-transaction or pinned); new connections open with 2
//	   credential 1 drained (or expired) ── Delete
//	   Mint fails (API down): keep 2, warn, count, retry with backoff (at most TTL/10);
//	      past its expiry new connections fail with pool.ErrNoCredential naming the database,
//	      until a Mint succeeds
//	Close ── Delete every credential still alive
//
// What it must not do: let a secret reach a log, an error, a metric or a String: Token and
// Credential print without theirs, APIError names requests by method and path only.
//
// Concurrency: a Client is safe for concurrent use; see Rotator for its goroutines.
package planetscale
