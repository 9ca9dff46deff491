package pgserver

import (
	"bufio"
	"encoding/binary"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	// maxStartup bounds the startup packet, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH does.
	maxStartup = 10_000
	// flushAt is how much output is buffered before it is written mid-result: rows stream to
	// the client in chunks of this size, and a slow reader stalls the query (TCP or pipe
	// backpressure) instead of growing the buffer.
	flushAt = 32 << 10
	// readBuf is the size of the buffered reader in front of the client.
	readBuf = 16 << 10
	// keepBody is the largest message buffer kept for reuse between messages.
	keepBody = 1 << 20
)

// reader frames frontend messages. A message body is valid until the next call.
type reader struct {
	r       *bufio.Reader
	body    []byte
	maxBody int
}

func newReader(r io.Reader, maxBody int) *reader {
	return &reader{r: bufio.NewReaderSize(r, readBuf), maxBody: maxBody}
}

// readBody reads n bytes, growing the buffer as data arrives so that a length from the wire
// doesn't allocate memory the client never sends.
func (r *reader) readBody(n int) ([]byte, error) {
	if cap(r.body) > keepBody && n <= keepBody {
		r.body = nil
	}
	r.body = r.body[:0]
	for len(r.body) < n {
		chunk := min(n-len(r.body), keepBody)
		if cap(r.body)-len(r.body) < chunk {
			grown := make([]byte, len(r.body), len(r.body)+chunk)
			copy(grown, r.body)
			r.body = grown
		}
		start := len(r.body)
		r.body = r.body[:start+chunk]
		if _, err := io.ReadFull(r.r, r.body[start:]); err != nil {
			return nil, err
		}
	}
	return r.body, nil
}

// startup reads the untyped first message: its protocol code and its body from the code on, as
// pgproto3's decoders expect it.
func (r *reader) startup() (uint32, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(h[:4]))
	if n < 8 || n > maxStartup {
		return 0, nil, Errorf(CodeProtocolViolation, "invalid length of startup packet")
	}
	rest, err := r.readBody(n - 8)
	if err != nil {
		return 0, nil, err
	}
	body := append(h[4:8:8], rest...)
	return binary.BigEndian.Uint32(h[4:]), body, nil
}

// next reads one typed message.
func (r *reader) next() (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(h[1:]))
	if n < 4 || n-4 > r.maxBody {
		return 0, nil, Errorf(CodeProtocolViolation, "invalid message length")
	}
	body, err := r.readBody(n - 4)
	return h[0], body, err
}

// nextIs reports whether the next message, if already received, has type t.
func (r *reader) nextIs(t byte) bool {
	if r.r.Buffered() == 0 {
		return false
	}
	b, err := r.r.Peek(1)
	return err == nil && b[0] == t
}

// Appenders for the backend messages sent per query and per row; the rest go through
// pgproto3's Encode (AppendMsg).

// BeginMsg appends the header of a message of type t and returns where its length goes, for
// FinishMsg.
func BeginMsg(dst []byte, t byte) ([]byte, int) {
	return append(dst, t, 0, 0, 0, 0), len(dst) + 1
}

// FinishMsg writes the length of the message BeginMsg began at at.
func FinishMsg(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at))
	return dst
}

// AppendEmpty appends a message of type t without a body: ParseComplete '1', BindComplete '2',
// CloseComplete '3', NoData 'n', EmptyQueryResponse 'I', PortalSuspended 's'.
func AppendEmpty(dst []byte, t byte) []byte { return append(dst, t, 0, 0, 0, 4) }

// AppendCommandComplete appends CommandComplete with tag, and n after it when counted.
func AppendCommandComplete(dst []byte, tag string, n int64, counted bool) []byte {
	dst, at := BeginMsg(dst, 'C')
	dst = append(dst, tag...)
	if counted {
		dst = append(dst, ' ')
		dst = appendInt(dst, n)
	}
	dst = append(dst, 0)
	return FinishMsg(dst, at)
}

func appendInt(dst []byte, n int64) []byte {
	if n == 0 {
		return append(dst, '0')
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[i:]...)
}

// AppendReady appends ReadyForQuery with the transaction status ('I', 'T' or 'E').
func AppendReady(dst []byte, status byte) []byte { return append(dst, 'Z', 0, 0, 0, 5, status) }

// AppendMsg appends any backend message.
func AppendMsg(dst []byte, m pgproto3.BackendMessage) []byte {
	out, err := m.Encode(dst)
	if err != nil {
		// Only a field beyond the protocol's limits fails to encode; what the backends build
		// never does.
		panic("pgserver: encoding " + err.Error())
	}
	return out
}
