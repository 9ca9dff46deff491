package pgwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxStartupLen bounds the startup packet, as PostgreSQL's own MAX_STARTUP_PACKET_LENGTH does.
const MaxStartupLen = 10000

// ErrTooLarge reports a message whose declared length is over the reader's limit.
var ErrTooLarge = errors.New("pgwire: message too large")

// ErrBadLength reports a message whose declared length is below the 4 bytes of the length itself.
var ErrBadLength = errors.New("pgwire: invalid message length")

// Reader frames PostgreSQL messages from a byte stream. It reads in large chunks and hands out
// slices of its own buffer: whatever a Read method returns is valid only until the next call.
// A Reader is used by one goroutine at a time.
type Reader struct {
	src    io.Reader
	buf    []byte
	start  int // first unread byte
	end    int // end of buffered data
	maxLen int
	chunk  int // the buffer's first size, what it grows by and shrinks back to
}

const readChunk = 16 << 10

// NewReader returns a Reader over src that refuses messages longer than maxLen bytes.
func NewReader(src io.Reader, maxLen int) *Reader { return NewReaderSize(src, maxLen, readChunk) }

// NewReaderSize is NewReader with a first buffer of size bytes. A client's reader starts
// small: most sessions send short messages and spend their time idle, holding the buffer.
func NewReaderSize(src io.Reader, maxLen, size int) *Reader {
	size = max(size, 64)
	return &Reader{src: src, buf: make([]byte, size), maxLen: maxLen, chunk: size}
}

// Buffered reports how many bytes are already read from the source and not yet returned.
func (r *Reader) Buffered() int { return r.end - r.start }

// ensure makes at least n unread bytes available. The buffer grows only when it is full, and
// then at most doubles, so a declared length costs memory only as its bytes arrive.
func (r *Reader) ensure(n int) error {
	if r.start == r.end {
		r.start, r.end = 0, 0
		if len(r.buf) > 4*max(r.chunk, readChunk) {
			r.buf = make([]byte, r.chunk) // give back what one large message needed
		}
	}
	for r.end-r.start < n {
		if r.end == len(r.buf) {
			if r.start > 0 {
				r.end = copy(r.buf, r.buf[r.start:r.end])
				r.start = 0
			} else {
				nb := make([]byte, min(2*len(r.buf), max(n, len(r.buf)+r.chunk)))
				r.end = copy(nb, r.buf[:r.end])
				r.buf = nb
			}
		}
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			if r.end-r.start >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && r.end-r.start > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// ReadStartup reads one untyped startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest) and returns its body after the length word.
func (r *Reader) ReadStartup() ([]byte, error) {
	if err := r.ensure(4); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(r.buf[r.start:]))
	if n < 8 {
		return nil, ErrBadLength
	}
	if n > MaxStartupLen {
		return nil, ErrTooLarge
	}
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	body := r.buf[r.start+4 : r.start+n]
	r.start += n
	return body, nil
}

// frameLen returns the total length of the typed message at the head of the buffer, or an error
// for a declared length that is invalid or over the limit. The 5-byte header must be buffered.
func (r *Reader) frameLen() (int, error) {
	n := int(binary.BigEndian.Uint32(r.buf[r.start+1:]))
	if n < 4 {
		return 0, fmt.Errorf("%w: %d for message %q", ErrBadLength, n, r.buf[r.start])
	}
	if n > r.maxLen {
		return 0, fmt.Errorf("%w: %d bytes for message %q", ErrTooLarge, n, r.buf[r.start])
	}
	return n + 1, nil
}

// ReadMessage reads one typed message and returns its type and body (without type and length).
func (r *Reader) ReadMessage() (typ byte, body []byte, err error) {
	if err := r.ensure(5); err != nil {
		return 0, nil, err
	}
	n, err := r.frameLen()
	if err != nil {
		return 0, nil, err
	}
	if err := r.ensure(n); err != nil {
		return 0, nil, err
	}
	typ = r.buf[r.start]
	body = r.buf[r.start+5 : r.start+n]
	r.start += n
	return typ, body, nil
}

// ReadFrames waits for at least one whole message and returns every whole message already
// buffered, as raw frames (type, length, body) back to back. It lets a proxy forward a burst of
// pipelined messages with one write.
func (r *Reader) ReadFrames() ([]byte, error) {
	if err := r.ensure(5); err != nil {
		return nil, err
	}
	n, err := r.frameLen()
	if err != nil {
		return nil, err
	}
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	end := r.start + n
	for r.end-end >= 5 {
		m := int(binary.BigEndian.Uint32(r.buf[end+1:]))
		if m < 4 || m > r.maxLen || r.end-end < m+1 {
			break // a bad length is reported by the next call, after the good frames are used
		}
		end += m + 1
	}
	frames := r.buf[r.start:end]
	r.start = end
	return frames, nil
}

// Frame is one message inside a run of raw frames.
type Frame struct {
	Type byte
	Body []byte
	Raw  []byte // type, length and body
}

// NextFrame splits the first message off a run of whole raw frames, as returned by ReadFrames.
// It reports ok=false at the end of the run or on a frame that does not fit.
func NextFrame(frames []byte) (f Frame, rest []byte, ok bool) {
	if len(frames) < 5 {
		return Frame{}, frames, false
	}
	n := int(binary.BigEndian.Uint32(frames[1:]))
	if n < 4 || len(frames) < n+1 {
		return Frame{}, frames, false
	}
	return Frame{Type: frames[0], Body: frames[5 : n+1], Raw: frames[:n+1]}, frames[n+1:], true
}

// AppendFrame appends a message with the given type and body to dst.
func AppendFrame(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+4))
	return append(dst, body...)
}

// BeginFrame appends a message header with a placeholder length; FinishFrame fills it in.
func BeginFrame(dst []byte, typ byte) ([]byte, int) {
	at := len(dst)
	dst = append(dst, typ, 0, 0, 0, 0)
	return dst, at
}

// FinishFrame sets the length of the message begun at offset at.
func FinishFrame(dst []byte, at int) []byte {
	binary.BigEndian.PutUint32(dst[at+1:], uint32(len(dst)-at-1))
	return dst
}
