package mysqlwire

import "github.com/go-mysql-org/go-mysql/mysql"

// EdgeCapabilities are the capability flags the edge provides itself, whatever the origin:
// the connection phase is the edge's. CLIENT_SSL is added when TLS is configured.
const EdgeCapabilities uint32 = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_ATTRS

// ForwardedCapabilities are the flags that shape what commands and answers look like; the
// edge advertises them when the origin does, and the pool side answers in the format the
// negotiated ones imply. Never CLIENT_COMPRESS (the edge does not compress) or CLIENT_SSL (TLS
// ends at the edge). CLIENT_LOCAL_FILES only where LOAD DATA LOCAL is allowed.
const ForwardedCapabilities uint32 = mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_MULTI_STATEMENTS |
	mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_SESSION_TRACK |
	mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_LOCAL_FILES

// InertCapabilities are flags a MySQL or MariaDB server advertises that change nothing on
// the wire today (CLIENT_NO_SCHEMA, CLIENT_ODBC, CLIENT_IGNORE_SIGPIPE and the old
// CLIENT_RESERVED); the edge advertises them when the origin does, so that its greeting is
// the origin's.
const InertCapabilities uint32 = mysql.CLIENT_NO_SCHEMA | mysql.CLIENT_ODBC | mysql.CLIENT_IGNORE_SIGPIPE |
	mysql.CLIENT_RESERVED

// Capabilities returns the flags to advertise for an origin that advertised origin:
// EdgeCapabilities and the forwarded and inert flags the origin has, CLIENT_LOCAL_FILES only
// if localInfile.
func Capabilities(origin uint32, localInfile bool) uint32 {
	caps := EdgeCapabilities | origin&(ForwardedCapabilities|InertCapabilities)
	if !localInfile {
		caps &^= mysql.CLIENT_LOCAL_FILES
	}
	return caps
}

// MariaDB's extended capabilities are a second word of flags (bits 32-63 of its 64-bit
// capabilities), sent in the reserved bytes of the greeting and the handshake response by
// a server and a client that both leave CLIENT_MYSQL (CLIENT_LONG_PASSWORD) off. Values
// here are of that second word.
const (
	// ExtExtendedMetadata is MARIADB_CLIENT_EXTENDED_METADATA: column definitions carry the
	// extended type (json, point, uuid...) that drivers read to decode a column.
	ExtExtendedMetadata uint32 = 1 << 3
	// ForwardedExtCapabilities are the extended capabilities the edge advertises when the
	// origin (through the pool) does. Progress reports, COM_MULTI, bulk executes and
	// metadata caching are not among them: all are optional to a client.
	ForwardedExtCapabilities = ExtExtendedMetadata
)
