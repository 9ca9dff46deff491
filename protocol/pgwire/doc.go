// Package pgwire is the PostgreSQL wire protocol as Slipstream's client side speaks it: message
// framing of its own (msgio.go reads the type byte and length and appends messages into the
// caller's buffer; it does not use pgx's pgproto3, which only its tests use, as a reference
// decoder), the startup packets, server-side password authentication (SCRAM-SHA-256, md5,
// cleartext over TLS), the TLS configuration for clients, and the ErrorResponse packets a
// client sees, from one table of SQLSTATEs (errors.go). The certificate itself is made and
// loaded by package certs.
//
// It must not know about pools, upstream servers, caches or sessions: it turns bytes into
// messages and back, and checks a password it is handed. Deciding who may connect, and to what,
// belongs to the proxy.
//
// Start reading at Reader (msgio.go): it frames messages out of a byte stream into its own
// buffer, so whatever it returns is valid only until the next read; copy what you keep. Then
// ParseStartup (startup.go) and Authenticate (auth.go).
//
// Concurrency: a Reader, and an Authenticate call, belong to the one goroutine serving a
// connection. The package-level state is the SCRAM key cache, safe for concurrent use. The
// Append functions only append to the slice they are given.
//
// The startup exchange, as the proxy runs it with this package:
//
//	client                                   Slipstream
//	  |                                              |
//	  |-- SSLRequest ------------------------------->|  ReadStartup, ParseStartup: SSLRequest
//	  |<----------------------------- 'S' (or 'N') --|
//	  |== TLS handshake =============================|  tls.Server(ServerTLSConfig); then a NEW
//	  |                                              |  Reader: nothing buffered before TLS is used
//	  |-- StartupMessage (user, database, ...) ----->|  ReadStartup, ParseStartup: Startup
//	  |<----- AuthenticationSASL / MD5 / Cleartext --|  Authenticate
//	  |-- SASLInitialResponse / PasswordMessage ---->|
//	  |<--------------- AuthenticationSASLContinue --|  (SCRAM only)
//	  |-- SASLResponse ----------------------------->|
//	  |<------------------ AuthenticationSASLFinal --|
//	  |<------------------------- AuthenticationOk --|  the caller: AppendAuthenticationOK
//	  |<------------------------- ParameterStatus* --|
//	  |<--------------------------- BackendKeyData --|
//	  |<---------------------- ReadyForQuery ('I') --|  AppendReadyForQuery
//	  |                                              |
//
// Any refusal along the way is an ErrorResponse with severity FATAL (AppendError), then the
// connection closes. A CancelRequest arrives instead of a StartupMessage on a connection of its
// own and gets no answer at all.
package pgwire
