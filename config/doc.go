// Package config is the configuration of one slipstream process: the documented [Config]
// struct, its TOML file, defaults, validation, and the drop-in connection strings that
// clients use instead of the origin's.
//
// Start reading at [Config]. A configuration comes together in this order, each step
// winning over the ones before it:
//
//  1. [Default]: listen addresses and the data directory;
//  2. the TOML file, read strictly by [Load] or [Parse]: an unknown key is an error;
//  3. command-line flags, which cmd/slipstream applies field by field, and
//     [Config.MergeOrigins] for --origin [NAME=]URL ([SplitOriginFlag]);
//  4. [Config.Normalize]: every zero that has a default gets it, and a database's name, user
//     and password default to those of its origin URL;
//  5. [Config.Validate]: every problem at once, each naming the setting(s) involved.
//
// A file serving two PostgreSQL databases:
//
//	pg_listen = "0.0.0.0:6432"
//
//	[[database]]
//	origin = "postgres://app:s3cret@db.example.com:5432/app?sslmode=verify-full"
//	max_connections = 10
//	queue_timeout = "5s"
//
//	[[database]]
//	name = "reports"
//	origin = "postgresql://reader:pw@replica.example.com/app"
//	auth_method = "md5"
//
// A MySQL or MariaDB database (kind mysql, from the mysql:// scheme) is served on mysql_listen:
//
//	mysql_listen = "127.0.0.1:3307"
//
//	[[database]]
//	origin = "mysql://shop:pw@mysql.example.com:3306/shop?tls=true"
//	auth_method = "caching_sha2_password" # or "mysql_native_password", "trust"
//	allow_local_infile = false
//
// A PlanetScale branch (planetscale.go): Slipstream mints and rotates its credentials with a
// service token, and the API tells its kind:
//
//	[[database]]
//	origin = "planetscale://acme/shop/main?role=readwriter"
//	credential_ttl = "1h"
//
// A PostgreSQL and a MySQL database may share a name, since their clients come in on different
// listeners; between edge and pool the MySQL one is then NAME#mysql ([Config.TunnelName]).
//
// What this package must not do: open sockets, read flags or environment variables (only
// cmd does; Load reads the one file it is given), or let a secret reach an error, a log or a
// String result. Every URL it prints goes through [RedactURL]; [Database.ConnString] is the one
// function whose result holds a password, because handing that string to the operator is
// its purpose.
//
// Concurrency: a Config is a plain value with no hidden state. Build it in one goroutine,
// then share it read-only.
package config
