// Package pstest is a fake of PlanetScale's public API for tests: an httptest server that
// follows the endpoints package planetscale calls (organizations, databases and branches with
// pagination, MySQL passwords and Postgres roles: mint, renew, delete), checks the service
// token, and can be told to fail (401, 404, 429 with Retry-After, 5xx, down altogether).
//
// In front of a real database (Backend: MySQLUsers for MariaDB, PostgresRoles for PostgreSQL)
// minting a credential creates a real database user with that password, and deleting it, or its
// expiry, drops the user and ends its connections: the credentials a test gets really work,
// and really stop working.
//
// Start reading at Fake. It must not be imported by the product: only tests use it.
//
// Concurrency: a Fake's methods may be called from any goroutine while it serves.
package pstest
