package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// Wire format of the QUIC tunnel. Every QUIC stream starts with a two-byte header, the protocol
// version and the stream's kind, followed by frames: a type byte, a big-endian uint32 payload
// length, the payload. A reader checks the length against the type's limit before it reads or
// allocates anything, and grows its buffer only as bytes arrive.
const (
	// version is the tunnel protocol's version; the TLS ALPN names it too, so that edges and pools
	// of incompatible versions fail the handshake instead of misreading each other.
	// Version 2 added the write reports and invalidations (frameWrites, kindInvalidate);
	// version 3 the cache hints and the pool end's cache (frameHint, flagCached), and the
	// edge's lease on its cache (kindLease); version 4 the functions that write in the profile
	// (Related.Writers); version 5 the replica routing of MySQL commands (frameRoute, route.go);
	// version 6 the change streams' states (frameStreamState, streamstate.go).
	version byte = 6
	alpn         = "slipstream-tunnel/6"

	// Stream kinds, the second header byte.
	kindSession byte = 'S' // one client session, for its whole life
	kindProfile byte = 'P' // one Profile request and its answer
	kindCancel  byte = 'C' // one Cancel request and its answer
	// kindInvalidate is the one kind the pool end opens: one invalidation for the edge's cache
	// and its acknowledgement (frameOK).
	kindInvalidate byte = 'I'
	// kindLease, opened by the pool end once per connection: frameLease after frameLease, for as
	// long as the connection lives (see Client.CacheCurrent).
	kindLease byte = 'L'
	// kindRole: one role lookup (a frameOpen of appendRoleRequest) and its frameVerifier, for a
	// database that lets any role in (roles.go).
	kindRole byte = 'U'

	// Frame types.
	frameOpen    byte = 'O' // edge→pool: database NUL, then startup parameters as key NUL value NUL
	frameBatch   byte = 'B' // edge→pool: whole frontend messages, one Session.Send; the last part of a client's batch
	frameMore    byte = 'b' // edge→pool: as frameBatch, but more of the same client batch follows
	frameSkip    byte = 'K' // edge→pool: frontend messages the edge answered itself (Stream.Skip)
	frameData    byte = 'D' // pool→edge: flags byte, then backend messages (one Session.Recv)
	frameError   byte = 'E' // pool→edge: error code byte, then text; the last frame of a stream
	frameProfile byte = 'R' // pool→edge: a Profile (see appendProfile)
	frameCancel  byte = 'X' // edge→pool: the uint64 QUIC stream ID of the session to cancel
	frameOK      byte = 'A' // the request succeeded: pool→edge after Cancel, edge→pool after Invalidate
	// frameWrites, edge→pool before a batch: the tables the session's transaction has written,
	// as flags then table NUL...; the pool end tells every other edge before the batch's last
	// answer goes out.
	frameWrites byte = 'W'
	// frameInvalidate, pool→edge: database NUL, then a frameWrites payload.
	frameInvalidate byte = 'V'
	// frameHint, edge→pool before a batch: the batch is one unit the edge keeps in its cache,
	// under a key and reading tables (see appendHint); the pool end may answer it from its own.
	frameHint byte = 'H'
	// frameCatalog, pool→edge on an invalidation stream: a database name; the origin's catalog
	// changed (functions, views, triggers...): the edge fetches the database's profile again
	// before it acknowledges (frameOK).
	frameCatalog byte = 'G'
	// frameLease, pool→edge: a big-endian uint32, how many milliseconds after it arrives the
	// edge may still serve cached answers of the pool's databases without hearing from it again.
	frameLease byte = 'T'
	// frameVerifier, pool→edge: a role's stored password as the origin has it, empty for none.
	frameVerifier byte = 'Y'
	// frameStreamState, pool→edge on an invalidation stream (acknowledged) or before a lease
	// renewal: a database's change-stream state (see appendStreamState, streamstate.go).
	frameStreamState byte = 'Z'

	// Flags of a data frame.
	flagPending byte = 1 // more answers are due without a further client message
	flagPinned  byte = 2 // the session is pinned: the pool end pushes whatever the origin sends
	flagCached  byte = 4 // the answers come from the pool end's cache: the origin was not asked

	// Flags of a writes frame.
	flagAllTables byte = 1 // any table may have been written: the whole database is invalidated

	headerLen = 5
)

// Limits on payload lengths, by frame type, checked before reading the payload.
const (
	maxBatch   = 512 << 20 // one frontend message may be up to proxy.Config.MaxMessage (256 MiB by default)
	maxSmall   = 1 << 20   // open, error, cancel
	maxProfile = 16 << 20  // parameters and pg_proc volatilities
	// maxTables bounds the tables of one writes or invalidate frame; a transaction that writes
	// more is reported as writing all of them.
	maxTables = 256
	// batchChunk is how much of a client's batch the edge puts in one frame, when the batch
	// holds several messages: the pool end then holds at most about this much of a COPY at once.
	batchChunk = 1 << 20
	// growStep is how much a reader allocates ahead of the bytes that actually arrived.
	growStep = 64 << 10
)

// Error codes of error frames: the sentinel errors a Stream reports, so that they survive the
// network as themselves (errors.Is).
const (
	codeOther        byte = 0
	codeOriginLost   byte = 1
	codeQueueTimeout byte = 2
	codeTerminated   byte = 3
	codeNoDatabase   byte = 4
	// codeOrigin is a link.OriginError: the next byte is its Refusal, the text its Detail.
	codeOrigin byte = 5
	// codeOriginEnded is link.ErrOriginEnded: the client has the origin's FATAL already.
	codeOriginEnded byte = 6
)

var (
	errBadFrame = errors.New("tunnel: malformed frame")
	// errNoDatabase is the pool end's answer for a database it does not serve.
	errNoDatabase = errors.New("tunnel: the pool does not serve this database")
	// errStreamClosed is what a Stream returns after its own Close.
	errStreamClosed = errors.New("tunnel: stream closed")
)

func limitOf(typ byte) int {
	switch typ {
	case frameBatch, frameMore, frameSkip, frameData, frameHint:
		return maxBatch
	case frameProfile:
		return maxProfile
	}
	return maxSmall
}

// appendHeader appends a frame header for a payload of n bytes.
func appendHeader(dst []byte, typ byte, n int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, typ), uint32(n))
}

// appendFrame appends a whole frame.
func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	return append(appendHeader(dst, typ, len(payload)), payload...)
}

// readHeader reads a frame header into hdr and returns the type and the checked payload length.
func readHeader(r io.Reader, hdr *[headerLen]byte) (byte, int, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if uint64(n) > uint64(limitOf(hdr[0])) {
		return 0, 0, fmt.Errorf("%w: %d-byte payload of frame type %q", errBadFrame, n, hdr[0])
	}
	return hdr[0], int(n), nil
}

// readPayload appends n bytes from r to dst, allocating no more than growStep ahead of what has
// arrived: a peer that announces a large frame and sends nothing costs nothing.
func readPayload(r io.Reader, dst []byte, n int) ([]byte, error) {
	for n > 0 {
		step := min(n, growStep)
		if len(dst)+n <= cap(dst) {
			step = n
		}
		dst = slices.Grow(dst, step)
		start := len(dst)
		dst = dst[:start+step]
		if _, err := io.ReadFull(r, dst[start:]); err != nil {
			return dst[:start], err
		}
		n -= step
	}
	return dst, nil
}

// readFrame reads one frame, appending its payload to buf[:0].
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [headerLen]byte
	typ, n, err := readHeader(r, &hdr)
	if err != nil {
		return 0, buf, err
	}
	buf, err = readPayload(r, buf[:0], n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return typ, buf, err
}

// ProtocolParam is the Open parameter that names a session's wire protocol; "mysql" makes the
// stream carry MySQL packets, anything else PostgreSQL messages. The tunnel looks at the
// framing only, to know whether a batch draws an answer (the codecs' DrawsAnswers); it never
// reads the SQL.
const ProtocolParam = "protocol"

// errorCode is the code an error frame carries for err.
func errorCode(err error) byte {
	switch {
	case errors.Is(err, link.ErrOriginEnded):
		return codeOriginEnded
	case errors.Is(err, link.ErrOriginLost):
		return codeOriginLost
	case errors.Is(err, link.ErrQueueTimeout):
		return codeQueueTimeout
	case errors.Is(err, link.ErrTerminated):
		return codeTerminated
	case errors.Is(err, errNoDatabase):
		return codeNoDatabase
	}
	return codeOther
}

// appendError appends an error frame for err.
func appendError(dst []byte, err error) []byte {
	var oe *link.OriginError
	if errors.As(err, &oe) {
		// The origin's refusal crosses as itself, so that the edge tells the client what the
		// origin meant (28P01, 3D000...).
		msg := truncate(oe.Detail, 4096) + "\x00" + truncate(oe.Code, 64)
		dst = appendHeader(dst, frameError, 2+len(msg))
		return append(append(dst, codeOrigin, byte(oe.Refusal)), msg...)
	}
	msg := truncate(err.Error(), 4096)
	dst = appendHeader(dst, frameError, 1+len(msg))
	return append(append(dst, errorCode(err)), msg...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// decodeError turns an error frame's payload back into an error that matches the pool end's
// sentinel. An error the edge has no sentinel for means the pool side of the session is gone:
// it is reported as ErrOriginLost, so that the client is told so.
func decodeError(payload []byte) error {
	if len(payload) == 0 {
		return fmt.Errorf("%w: %w: empty error frame", link.ErrOriginLost, errBadFrame)
	}
	msg := string(payload[1:])
	switch payload[0] {
	case codeOriginLost:
		return fmt.Errorf("%w (pool: %s)", link.ErrOriginLost, msg)
	case codeOriginEnded:
		return fmt.Errorf("%w (pool: %s)", link.ErrOriginEnded, msg)
	case codeQueueTimeout:
		return fmt.Errorf("%w (pool: %s)", link.ErrQueueTimeout, msg)
	case codeTerminated:
		return link.ErrTerminated
	case codeNoDatabase:
		return fmt.Errorf("%w: %w", link.ErrOriginLost, errNoDatabase)
	case codeOrigin:
		if len(payload) < 2 {
			return fmt.Errorf("%w: %w: short origin error frame", link.ErrOriginLost, errBadFrame)
		}
		detail, code, _ := strings.Cut(string(payload[2:]), "\x00")
		return fmt.Errorf("%w: %w", link.ErrOriginLost, link.NewOriginError(link.Refusal(payload[1]), detail, code, nil))
	}
	return fmt.Errorf("%w (pool: %s)", link.ErrOriginLost, msg)
}

// appendStrings appends NUL-terminated strings.
func appendStrings(dst []byte, ss ...string) []byte {
	for _, s := range ss {
		dst = append(append(dst, s...), 0)
	}
	return dst
}

// cutString splits a NUL-terminated string off b.
func cutString(b []byte) (string, []byte, bool) {
	i := slices.Index(b, 0)
	if i < 0 {
		return "", b, false
	}
	return string(b[:i]), b[i+1:], true
}

// appendOpen encodes an open frame's payload.
func appendOpen(dst []byte, db string, params map[string]string) []byte {
	dst = appendStrings(dst, db)
	for k, v := range params {
		dst = appendStrings(dst, k, v)
	}
	return dst
}

// parseOpen decodes an open frame's payload.
func parseOpen(b []byte) (string, map[string]string, error) {
	db, b, ok := cutString(b)
	if !ok {
		return "", nil, errBadFrame
	}
	params := map[string]string{}
	for len(b) > 0 {
		var k, v string
		if k, b, ok = cutString(b); !ok {
			return "", nil, errBadFrame
		}
		if v, b, ok = cutString(b); !ok {
			return "", nil, errBadFrame
		}
		params[k] = v
	}
	return db, params, nil
}

// appendProfile encodes a Profile: a uint32 count of parameters, each as key NUL value NUL,
// then a uint32 count of functions, each as name NUL and its volatility byte, then the origin
// latency in nanoseconds as a uint64, then the related relations: a uint32 count of groups,
// each a uint32 count of names NUL, and the tables whose writes may change any, the same way;
// then a uint32 count of functions that write, each as name NUL and its relations as a group.
func appendProfile(dst []byte, p link.Profile) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Parameters)))
	for k, v := range p.Parameters {
		dst = appendStrings(dst, k, v)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Volatility)))
	for k, v := range p.Volatility {
		dst = append(appendStrings(dst, k), v)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.OriginLatency))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Related.Groups)))
	for _, g := range p.Related.Groups {
		dst = appendNames(dst, g)
	}
	dst = appendNames(dst, p.Related.AnyTable)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Related.Writers)))
	for fn, rels := range p.Related.Writers {
		dst = appendNames(appendStrings(dst, fn), rels)
	}
	return dst
}

// appendNames appends a uint32 count of names, then each NUL-terminated.
func appendNames(dst []byte, names []string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(names)))
	for _, n := range names {
		dst = appendStrings(dst, n)
	}
	return dst
}

// cutCount splits a uint32 count off b, checked against the bytes left at per bytes an item.
func cutCount(b []byte, per int) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64((len(b)-4)/per) {
		return 0, b, false
	}
	return n, b[4:], true
}

// cutNames is appendNames undone; the count is checked against the bytes left.
func cutNames(b []byte) ([]string, []byte, bool) {
	n, b, ok := cutCount(b, 1)
	if !ok {
		return nil, b, false
	}
	names := make([]string, 0, n)
	for range n {
		s, rest, ok := cutString(b)
		if !ok {
			return nil, b, false
		}
		names, b = append(names, s), rest
	}
	return names, b, true
}

// parseProfile decodes appendProfile's encoding; every count is checked against the bytes left.
func parseProfile(b []byte) (link.Profile, error) {
	var p link.Profile
	n, b, ok := cutCount(b, 2)
	if !ok {
		return p, errBadFrame
	}
	p.Parameters = make(map[string]string, n)
	for range n {
		var k, v string
		if k, b, ok = cutString(b); !ok {
			return p, errBadFrame
		}
		if v, b, ok = cutString(b); !ok {
			return p, errBadFrame
		}
		p.Parameters[k] = v
	}
	if n, b, ok = cutCount(b, 2); !ok {
		return p, errBadFrame
	}
	p.Volatility = make(map[string]byte, n)
	for range n {
		k, rest, ok := cutString(b)
		if !ok || len(rest) < 1 {
			return p, errBadFrame
		}
		p.Volatility[k], b = rest[0], rest[1:]
	}
	if len(b) < 8 {
		return p, errBadFrame
	}
	p.OriginLatency = time.Duration(binary.BigEndian.Uint64(b))
	if n, b, ok = cutCount(b[8:], 4); !ok {
		return p, errBadFrame
	}
	for range n {
		g, rest, ok := cutNames(b)
		if !ok {
			return p, errBadFrame
		}
		p.Related.Groups, b = append(p.Related.Groups, g), rest
	}
	any, rest, ok := cutNames(b)
	if !ok {
		return p, errBadFrame
	}
	p.Related.AnyTable = any
	if n, b, ok = cutCount(rest, 5); !ok {
		return p, errBadFrame
	}
	for range n {
		fn, rest, ok := cutString(b)
		if !ok {
			return p, errBadFrame
		}
		rels, rest, ok := cutNames(rest)
		if !ok {
			return p, errBadFrame
		}
		if p.Related.Writers == nil {
			p.Related.Writers = make(map[string][]string, n)
		}
		p.Related.Writers[fn], b = rels, rest
	}
	if len(b) != 0 {
		return p, errBadFrame
	}
	return p, nil
}

// appendWrites encodes a writes frame's payload: a flags byte, then up to maxTables table
// names, each NUL-terminated. More tables than that, or a name with a NUL, become "all".
func appendWrites(dst []byte, tables []string, all bool) []byte {
	if len(tables) > maxTables {
		all = true
	}
	for _, t := range tables {
		all = all || len(t) > 1024 || strings.IndexByte(t, 0) >= 0
	}
	if all {
		return append(dst, flagAllTables)
	}
	return appendStrings(append(dst, 0), tables...)
}

// parseWrites decodes appendWrites's encoding.
func parseWrites(b []byte) (tables []string, all bool, err error) {
	if len(b) < 1 || b[0]&^flagAllTables != 0 {
		return nil, false, errBadFrame
	}
	all, b = b[0]&flagAllTables != 0, b[1:]
	for len(b) > 0 {
		if len(tables) == maxTables {
			return nil, false, errBadFrame
		}
		var t string
		var ok bool
		if t, b, ok = cutString(b); !ok {
			return nil, false, errBadFrame
		}
		tables = append(tables, t)
	}
	return tables, all, nil
}

// appendInvalidate encodes an invalidate frame's payload.
func appendInvalidate(dst []byte, db string, writes []byte) []byte {
	return append(appendStrings(dst, db), writes...)
}

// parseInvalidate decodes an invalidate frame's payload.
func parseInvalidate(b []byte) (db string, tables []string, all bool, err error) {
	db, b, ok := cutString(b)
	if !ok {
		return "", nil, false, errBadFrame
	}
	tables, all, err = parseWrites(b)
	return db, tables, all, err
}

// hint is a decoded cache hint: the edge's key for the unit that follows, the tables it reads,
// and how long its answer may be served.
type hint struct {
	key    []byte
	tables []string
	maxAge time.Duration
	swr    time.Duration
}

// appendHint encodes a hint frame's payload: max age and stale-while-revalidate in
// milliseconds as uint32s, a uint16 count of tables, each NUL-terminated, then the key. It
// reports false, appending nothing, for what a hint can't carry (too many tables, a name with a
// NUL): the pool end must know every table the answer depends on.
func appendHint(dst, key []byte, tables []string, maxAge, swr time.Duration) ([]byte, bool) {
	if len(tables) > maxTables || maxAge <= 0 {
		return dst, false
	}
	for _, t := range tables {
		if len(t) > 1024 || strings.IndexByte(t, 0) >= 0 {
			return dst, false
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(min(maxAge, time.Hour)/time.Millisecond))
	dst = binary.BigEndian.AppendUint32(dst, uint32(min(max(swr, 0), time.Hour)/time.Millisecond))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(tables)))
	dst = appendStrings(dst, tables...)
	return append(dst, key...), true
}

// parseHint decodes appendHint's encoding into h, copying what it keeps. The pool side puts
// the key in the session's namespace (poolend).
func parseHint(b []byte, h *hint) error {
	if len(b) < 10 {
		return errBadFrame
	}
	h.maxAge = time.Duration(binary.BigEndian.Uint32(b)) * time.Millisecond
	h.swr = time.Duration(binary.BigEndian.Uint32(b[4:])) * time.Millisecond
	n := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if n > maxTables {
		return errBadFrame
	}
	h.tables = make([]string, 0, n)
	for range n {
		t, rest, ok := cutString(b)
		if !ok {
			return errBadFrame
		}
		h.tables, b = append(h.tables, t), rest
	}
	if len(b) == 0 {
		return errBadFrame
	}
	h.key = append(h.key[:0], b...)
	return nil
}
