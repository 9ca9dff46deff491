// Package mysqlwire is the server side of the MySQL client/server protocol as the edge speaks
// it: packet framing, the connection phase (handshake v10, TLS, authentication) and error
// packets with real MySQL error numbers and SQLSTATEs. It knows nothing of pools or caches.
//
// Start reading at Accept (accept.go): it runs one client's connection phase up to a checked
// password; the caller, having opened what the session needs, ends it with Conn.Finish (OK)
// or Conn.Fail (ERR), then reads whole commands with Reader.ReadPacket and passes them on
// byte for byte. COM_CHANGE_USER is the connection phase again in the middle of the command
// phase: ParseChangeUser, then Conn.ChangeUser. A connection handed to another process in its
// command phase goes on there with Resume (resume.go), from a packet boundary (Reader.Torn).
//
//	client                              edge (Accept)
//	 │<──────────────── Handshake v10   │ server version, capabilities, collation from the
//	 │                                  │ origin profile; the edge's connection id; a fresh salt
//	 │ SSLRequest ─────────────────────>│ (optional) TLS handshake, then a new Reader
//	 │ HandshakeResponse41 ────────────>│ user, auth data, database, plugin, attributes
//	 │                                  │ Lookup: which account? unknown database: ERR 1049
//	 │<─────────── AuthSwitchRequest    │ only if the client's plugin is not the account's
//	 │ AuthSwitchResponse ─────────────>│
//	 │<──── AuthMoreData 0x03 (fast)    │ caching_sha2_password: we know the password, so the
//	 │<──── AuthMoreData 0x04 (full)    │ scramble is checked directly; a mismatch asks for
//	 │ password (TLS) | 0x02 ──────────>│ the full exchange: cleartext over TLS, or RSA
//	 │<───────── AuthMoreData PEM key   │ (public key, then the encrypted password)
//	 │ RSA-encrypted password ─────────>│
//	 │<──────────────────── OK | ERR    │ ERR 1045 for a wrong user or password; OK from Finish
//
// Why not go-mysql's server package for the handshake: it advertises a fixed capability set
// (no CLIENT_DEPRECATE_EOF, no CLIENT_MULTI_STATEMENTS), sends its first caching_sha2 login of
// every user through the full exchange because it only knows password hashes, and calls the
// command handler before authentication. This package uses go-mysql's mysql package for the
// protocol constants, scrambles and length-encoded integers, and does the rest itself.
//
// Buffers: a packet returned by Reader.ReadPacket is valid until the next call; copy what you
// keep. Encoders append to a caller's slice.
//
// Concurrency: a Reader belongs to one goroutine. Everything else is stateless.
package mysqlwire
