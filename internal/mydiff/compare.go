package mydiff

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The justified differences: what the comparison ignores, and why. Everything else must be
// byte for byte what the database sent.
const (
	// IgnoredGreetingCaps are capability bits of the greeting that are the edge's own choice,
	// not the database's: TLS is the edge's (configured on it, not on the origin); the edge
	// does not compress; CLIENT_LOCAL_FILES is refused unless the database's
	// allow_load_local says otherwise (a file read from the client's disk is a security
	// decision); CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS is about a login, which is the edge's;
	// CLIENT_MYSQL (CLIENT_LONG_PASSWORD) is the flag by which a server says it has no MariaDB
	// extended capabilities. Of those the edge offers none but
	// MARIADB_CLIENT_EXTENDED_METADATA when the origin does: progress reports, COM_MULTI, bulk
	// executes and metadata caching are optional to a client, which speaks the base protocol
	// to a server that does not offer them.
	IgnoredGreetingCaps = uint64(mysql.CLIENT_SSL|mysql.CLIENT_COMPRESS|mysql.CLIENT_LONG_PASSWORD|
		mysql.CLIENT_SSL_VERIFY_SERVER_CERT|mysql.CLIENT_REMEMBER_OPTIONS|mysql.CLIENT_LOCAL_FILES|
		mysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS) | ExtProgress | ExtComMulti | ExtBulkOperations | ExtCacheMetadata

	// IgnoredStatus are server status bits that depend on the origin connection that
	// answered, or on timing, rather than on what the client sent: SERVER_QUERY_WAS_SLOW
	// (long_query_time on a loaded machine).
	IgnoredStatus = mysql.SERVER_QUERY_WAS_SLOW
)

// Compare returns the differences between want (the database's transcript) and got
// (Slipstream's for the same script), each a sentence naming the step. Ignored: the
// connection id and the authentication salt and plugin of the greeting (the edge's, by
// design: it authenticates clients itself), IgnoredGreetingCaps, IgnoredStatus in OK and EOF
// packets.
func Compare(want, got *Transcript) []string {
	var out []string
	wg, gg := want.Greeting, got.Greeting
	if wg.Version != gg.Version {
		out = append(out, fmt.Sprintf("greeting: server version %q, want %q", gg.Version, wg.Version))
	}
	if d := (wg.Caps ^ gg.Caps) &^ IgnoredGreetingCaps; d != 0 {
		out = append(out, fmt.Sprintf("greeting: capabilities %s, want %s (differing: %s)",
			CapsString(gg.Caps&^IgnoredGreetingCaps), CapsString(wg.Caps&^IgnoredGreetingCaps), CapsString(d)))
	}
	if wg.Collation != gg.Collation {
		out = append(out, fmt.Sprintf("greeting: collation %d, want %d", gg.Collation, wg.Collation))
	}
	if wg.Status != gg.Status {
		out = append(out, fmt.Sprintf("greeting: status 0x%04x, want 0x%04x", gg.Status, wg.Status))
	}
	if d := (want.Caps ^ got.Caps) &^ IgnoredGreetingCaps; d != 0 {
		out = append(out, fmt.Sprintf("login: negotiated capabilities differ in %s", CapsString(d)))
	}
	want, got = renumber(want), renumber(got)
	n := max(len(want.Exchanges), len(got.Exchanges))
	for i := range n {
		if i >= len(got.Exchanges) {
			out = append(out, fmt.Sprintf("line %d %q: no answer (the run stopped before it)",
				want.Exchanges[i].Step.Line, want.Exchanges[i].Step.Text))
			break
		}
		if i >= len(want.Exchanges) {
			out = append(out, fmt.Sprintf("line %d %q: answered, but the database's run stopped before it",
				got.Exchanges[i].Step.Line, got.Exchanges[i].Step.Text))
			break
		}
		out = append(out, compareExchange(want.Exchanges[i], got.Exchanges[i])...)
	}
	return out
}

func compareExchange(w, g Exchange) []string {
	var out []string
	where := fmt.Sprintf("line %d %q", w.Step.Line, w.Step.Text)
	for i := range max(len(w.Packets), len(g.Packets)) {
		switch {
		case i >= len(g.Packets):
			return append(out, fmt.Sprintf("%s: packet %d missing: want %s", where, i, describe(w.Packets[i])))
		case i >= len(w.Packets):
			return append(out, fmt.Sprintf("%s: extra packet %d: %s", where, i, describe(g.Packets[i])))
		}
		wp, gp := normalize(w.Packets[i]), normalize(g.Packets[i])
		if !bytes.Equal(wp.Payload, gp.Payload) || !bytes.Equal(wp.Seqs, gp.Seqs) {
			out = append(out, fmt.Sprintf("%s: packet %d is %s, want %s", where, i, describe(gp), describe(wp)))
			if len(out) > 3 {
				return out
			}
		}
	}
	if w.Closed != g.Closed {
		out = append(out, fmt.Sprintf("%s: connection closed: %v, want %v", where, g.Closed, w.Closed))
	}
	return out
}

// renumber replaces the statement ids a server handed out by their order of appearance (1
// for the first prepared, ...), in prepare answers and in the errors that name them. MariaDB
// numbers statements from one counter for all connections, so an id says how many
// statements other sessions prepared before; clients treat ids as opaque.
func renumber(t *Transcript) *Transcript {
	ids := map[uint32]uint32{}
	out := *t
	out.Exchanges = make([]Exchange, len(t.Exchanges))
	for i, ex := range t.Exchanges {
		ex.Packets = append([]Packet(nil), ex.Packets...)
		for j, p := range ex.Packets {
			switch p.Role {
			case RolePrepare:
				if len(p.Payload) < 5 {
					break
				}
				id := binary.LittleEndian.Uint32(p.Payload[1:])
				if ids[id] == 0 {
					ids[id] = uint32(len(ids) + 1)
				}
				np := binary.LittleEndian.AppendUint32([]byte{0}, ids[id])
				p.Payload = append(np, p.Payload[5:]...)
			case RoleERR:
				p.Payload = renumberERR(p.Payload, ids)
			case RoleRow:
				p.Payload = renumberWarning(p.Payload, ids)
			}
			ex.Packets[j] = p
		}
		out.Exchanges[i] = ex
	}
	return &out
}

// stmtIDInMessage finds the statement id in the messages of errors that name one.
var stmtIDInMessage = regexp.MustCompile(`\((\d+)\)`)

// renumberERR rewrites the statement id in ERR 1243 and 1421 messages.
func renumberERR(p []byte, ids map[uint32]uint32) []byte {
	if len(p) < 3 {
		return p
	}
	code := binary.LittleEndian.Uint16(p[1:])
	if code != 1243 && code != 1421 {
		return p
	}
	return renumberIDs(p, ids)
}

// renumberIDs replaces each "(id)" in b by the statement's order of appearance.
func renumberIDs(b []byte, ids map[uint32]uint32) []byte {
	return stmtIDInMessage.ReplaceAllFunc(b, func(m []byte) []byte {
		n, err := strconv.ParseUint(string(m[1:len(m)-1]), 10, 32)
		if id, ok := ids[uint32(n)]; err == nil && ok {
			return []byte(fmt.Sprintf("(stmt#%d)", id))
		}
		return m
	})
}

// renumberWarning rewrites the statement id in a SHOW WARNINGS or SHOW ERRORS row (Level,
// Code, Message as text) of error 1243 or 1421, as renumberERR does in their ERR packets.
// Other rows, binary ones included, come back unchanged.
func renumberWarning(p []byte, ids map[uint32]uint32) []byte {
	var cols [][]byte
	for rest := p; len(rest) > 0; {
		v, isNull, n, err := mysql.LengthEncodedString(rest)
		if err != nil || isNull || len(cols) == 3 {
			return p
		}
		cols, rest = append(cols, v), rest[n:]
	}
	if len(cols) != 3 || string(cols[1]) != "1243" && string(cols[1]) != "1421" {
		return p
	}
	msg := renumberIDs(cols[2], ids)
	out := mysql.PutLengthEncodedString(cols[0])
	out = append(out, mysql.PutLengthEncodedString(cols[1])...)
	return append(out, mysql.PutLengthEncodedString(msg)...)
}

// normalize masks what IgnoredStatus covers.
func normalize(p Packet) Packet {
	if p.Role != RoleOK && p.Role != RoleEOF {
		return p
	}
	at := statusOffset(p.Payload)
	if at < 0 {
		return p
	}
	q := p
	q.Payload = append([]byte(nil), p.Payload...)
	s := binary.LittleEndian.Uint16(q.Payload[at:]) &^ IgnoredStatus
	binary.LittleEndian.PutUint16(q.Payload[at:], s)
	return q
}

// statusOffset is where the status flags of an OK or EOF payload are, or -1.
func statusOffset(p []byte) int {
	if len(p) == 5 && p[0] == 0xfe {
		return 3
	}
	if len(p) < 1 {
		return -1
	}
	_, _, n := mysql.LengthEncodedInt(p[1:])
	if 1+n >= len(p) {
		return -1
	}
	_, _, m := mysql.LengthEncodedInt(p[1+n:])
	if 1+n+m+2 > len(p) {
		return -1
	}
	return 1 + n + m
}

// describe says what a packet is, readably.
func describe(p Packet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seq %v len %d", p.Role, p.Seqs, len(p.Payload))
	switch {
	case p.Role == RoleERR:
		fmt.Fprintf(&b, " (%s)", describeERR(p.Payload))
	case len(p.Payload) > 256:
		fmt.Fprintf(&b, " sha256 %x, starts %q", sha256.Sum256(p.Payload), p.Payload[:64])
	default:
		fmt.Fprintf(&b, " %q", p.Payload)
	}
	return b.String()
}

// describeERR renders an ERR payload as "1064 (42000): message".
func describeERR(p []byte) string {
	if len(p) < 3 {
		return fmt.Sprintf("%q", p)
	}
	code := binary.LittleEndian.Uint16(p[1:])
	rest := p[3:]
	state := ""
	if len(rest) >= 6 && rest[0] == '#' {
		state, rest = string(rest[1:6]), rest[6:]
	}
	return fmt.Sprintf("%d (%s): %s", code, state, rest)
}

// CapsString names capability bits.
func CapsString(c uint64) string {
	var names []string
	for bit := uint64(1); bit != 0; bit <<= 1 {
		if c&bit == 0 {
			continue
		}
		if name, ok := mysql.CapNames[uint32(bit)]; ok && bit < 1<<32 {
			names = append(names, name)
			continue
		}
		ext := map[uint64]string{ExtProgress: "MARIADB_CLIENT_PROGRESS", ExtComMulti: "MARIADB_CLIENT_COM_MULTI",
			ExtBulkOperations: "MARIADB_CLIENT_STMT_BULK_OPERATIONS", ExtExtendedMetadata: "MARIADB_CLIENT_EXTENDED_METADATA",
			ExtCacheMetadata: "MARIADB_CLIENT_CACHE_METADATA"}
		if name, ok := ext[bit]; ok {
			names = append(names, name)
		} else {
			names = append(names, fmt.Sprintf("bit%d", bitIndex(bit)))
		}
	}
	return strings.Join(names, "|")
}

func bitIndex(b uint64) int {
	i := 0
	for b > 1 {
		b >>= 1
		i++
	}
	return i
}
