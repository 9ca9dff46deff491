// Package mydiff is a differential wire harness for the MySQL protocol: it runs scripts of
// command packets against MariaDB directly and against Slipstream, and compares the packets
// that come back one by one. It is used by tests only (cmd/slipstream's e2e_mysql_diff_test.go
// runs every script through `slipstream serve` and through an edge and a pool joined by the
// QUIC tunnel); the product must not import it.
//
// Start reading at Run: it logs in (Dial, a real handshake with the script's capabilities),
// sends each step's command packet and reads the answer as far as the protocol says it goes
// (OK, ERR, result sets while SERVER_MORE_RESULTS_EXISTS, a prepare's definitions, rows up to
// their EOF), keeping every packet. Compare then names each difference between two
// transcripts.
//
//	script                 Run (one connection per server)        Compare
//	 caps +deprecate_eof    handshake, login with those caps        greeting, negotiated caps
//	 prepare s SELECT ?  ─> COM_STMT_PREPARE ──> server             packet by packet, byte for
//	 execute s 5         ─> COM_STMT_EXECUTE (id from s's answer)   byte, sequence ids included,
//	 ...                    answers kept as Exchanges               but for the list below
//
// Scripts live in scripts/*.txt, one protocol situation each, one command per line:
//
//	caps +NAME -NAME ...    capabilities to ask for (DefaultCaps otherwise): found_rows,
//	                        long_flag, ignore_space, interactive, multi_statements,
//	                        multi_results, ps_multi_results, session_track, deprecate_eof,
//	                        extended_metadata (MariaDB's)
//	query SQL               COM_QUERY
//	prepare NAME SQL        COM_STMT_PREPARE; NAME stands for the id the server gives
//	execute NAME [cursor] [nobind] ARGS...
//	                        COM_STMT_EXECUTE; ARGS are 12, 1.5, 'text', x'00ff', NULL, or
//	                        N*ARG for N copies; cursor opens a read-only cursor; nobind relies
//	                        on the types sent before (new-params-bound 0). NAME may be "last"
//	                        (id 0xffffffff) or a number
//	fetch NAME ROWS         COM_STMT_FETCH
//	close NAME              COM_STMT_CLOSE (no answer)
//	reset NAME              COM_STMT_RESET
//	longdata NAME N DATA    COM_STMT_SEND_LONG_DATA for parameter N (no answer)
//	initdb DB | ping | resetconn | statistics | quit
//	fieldlist TABLE [WILD]  COM_FIELD_LIST
//	setoption on|off|N      COM_SET_OPTION
//	raw HEX                 any command packet; one answer packet
//	& STEP                  pipelined: written together with the next step, answers in order
//
// {{repeat "TEXT" N}} in a line stands for TEXT N times (65,535 parameters, 16 MiB values).
//
// Justified differences (Compare ignores them; nothing else):
//   - the greeting's connection id, authentication salt and plugin: the edge authenticates
//     clients itself, before any origin connection is involved;
//   - IgnoredGreetingCaps: TLS, compression, LOAD DATA LOCAL and the login are the edge's own
//     decisions, CLIENT_LONG_PASSWORD is the flag by which a server says it has no MariaDB
//     extended capabilities, and of those the edge offers only extended metadata (the others
//     are optional to every client);
//   - statement ids: MariaDB numbers statements from one counter for all connections, so an id
//     depends on what other sessions did (two direct runs differ too); Compare renumbers them
//     by order of appearance, in prepare answers and in the errors that name them;
//   - IgnoredStatus in OK and EOF packets: SERVER_QUERY_WAS_SLOW depends on the machine's
//     load, not on what the client sent.
//
// Generate turns fuzz input into a script from a fixed vocabulary of commands, for the fuzz
// target beside the scripts' test.
//
// Concurrency: a Conn and a Run belong to one goroutine; scripts and transcripts are values.
package mydiff
