package mysqlwire

import (
	"bufio"
	"errors"
	"io"
)

// MaxPayload is the largest payload of one packet; a payload of exactly this length continues
// in the next packet.
const MaxPayload = 1<<24 - 1

// HeaderLen is the length of a packet header: 3 bytes of payload length, 1 of sequence id.
const HeaderLen = 4

// Errors of Reader.ReadPacket besides the reader's own.
var (
	// ErrTooLarge means a logical packet is longer than the Reader's limit.
	ErrTooLarge = errors.New("mysqlwire: packet too large")
	// ErrOutOfOrder means a continuation packet did not carry the next sequence id.
	ErrOutOfOrder = errors.New("mysqlwire: packets out of order")
)

// Reader reads packets from a client.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
	seq byte // of the last packet header read
	// torn: the last ReadPacketTo failed after taking bytes of its packet off the
	// connection (Torn).
	torn bool
}

// NewReader returns a Reader of r that refuses logical packets whose payloads add up to more
// than max bytes. Its read buffer is small, as a client's commands mostly are and an idle
// session holds it; a larger packet is read past it, straight into the packet's buffer.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 2<<10), max: max}
}

// Buffered returns the number of bytes read from the connection but not yet returned.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// ReadPacket reads one logical packet: a packet, and when its payload is MaxPayload bytes long
// the packets that continue it, headers included, exactly as the client sent them. The
// result is valid until the next call.
func (r *Reader) ReadPacket() ([]byte, error) {
	b, err := r.ReadPacketTo(r.buf[:0])
	if cap(b) > cap(r.buf) {
		r.buf = b[:0]
	}
	return b, err
}

// ReadPacketTo is ReadPacket into dst (from its length on) instead of the Reader's buffer; it
// returns dst extended by the packet, or nil and the error.
func (r *Reader) ReadPacketTo(dst []byte) ([]byte, error) {
	total := 0
	var seq byte
	r.torn = true // until the first header's read says otherwise
	for first := true; ; first = false {
		var h [HeaderLen]byte
		if n, err := io.ReadFull(r.r, h[:]); err != nil {
			if !first && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			r.torn = !first || n > 0
			return nil, err
		}
		n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
		if !first && h[3] != seq+1 {
			return nil, ErrOutOfOrder
		}
		seq, r.seq = h[3], h[3]
		total += n
		if total > r.max {
			return nil, ErrTooLarge
		}
		start := len(dst)
		dst = append(dst, h[:]...)
		dst = grow(dst, n)
		if _, err := io.ReadFull(r.r, dst[start+HeaderLen:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n < MaxPayload {
			r.torn = false
			return dst, nil
		}
	}
}

// grow extends b by n bytes, reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n+len(b)/4)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Torn reports whether the last ReadPacketTo (or ReadPacket) failed partway through a packet,
// having taken some of its bytes off the connection: the connection is then no longer at a
// packet boundary. A read that failed before any byte came (a deadline that woke it, EOF
// between packets) is not torn.
func (r *Reader) Torn() bool { return r.torn }

// LastSeq returns the sequence id of the last packet header read, also when ReadPacket
// failed after it: the answer to a refused packet takes the next one.
func (r *Reader) LastSeq() byte { return r.seq }

// Payload returns the payload of a logical packet read by ReadPacket, without headers. It
// shares raw's memory unless the packet was split.
func Payload(raw []byte) []byte {
	if len(raw) < HeaderLen {
		return nil
	}
	n := int(raw[0]) | int(raw[1])<<8 | int(raw[2])<<16
	if n < MaxPayload || len(raw) == HeaderLen+n {
		return raw[HeaderLen:min(len(raw), HeaderLen+n)]
	}
	var p []byte
	for len(raw) >= HeaderLen {
		n := int(raw[0]) | int(raw[1])<<8 | int(raw[2])<<16
		end := min(len(raw), HeaderLen+n)
		p = append(p, raw[HeaderLen:end]...)
		raw = raw[end:]
	}
	return p
}

// Seq returns the sequence id of the first packet of raw.
func Seq(raw []byte) byte {
	if len(raw) < HeaderLen {
		return 0
	}
	return raw[3]
}

// LastSeq returns the sequence id of the last packet of a logical packet.
func LastSeq(raw []byte) byte {
	seq := byte(0)
	for len(raw) >= HeaderLen {
		seq = raw[3]
		n := int(raw[0]) | int(raw[1])<<8 | int(raw[2])<<16
		raw = raw[min(len(raw), HeaderLen+n):]
	}
	return seq
}

// BeginPacket appends a packet header with sequence id seq to dst; append the payload, then
// call FinishPacket with the returned offset. Payloads of MaxPayload bytes or more are not
// supported: the edge's own packets are small.
func BeginPacket(dst []byte, seq byte) ([]byte, int) {
	return append(dst, 0, 0, 0, seq), len(dst)
}

// FinishPacket fills in the length of the packet begun at offset h.
func FinishPacket(dst []byte, h int) []byte {
	n := len(dst) - h - HeaderLen
	dst[h], dst[h+1], dst[h+2] = byte(n), byte(n>>8), byte(n>>16)
	return dst
}

// AppendPacket appends one packet holding payload.
func AppendPacket(dst []byte, seq byte, payload []byte) []byte {
	dst, h := BeginPacket(dst, seq)
	return FinishPacket(append(dst, payload...), h)
}

// SetMax changes the Reader's limit on a logical packet, for the command phase.
func (r *Reader) SetMax(max int) { r.max = max }

// take returns a copy of the bytes buffered but not yet read, and empties the buffer.
func (r *Reader) take() []byte {
	b, _ := r.r.Peek(r.r.Buffered())
	b = append([]byte(nil), b...)
	r.r.Discard(len(b))
	return b
}
