package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"
)

// fuzzMaxLen is small so that the fuzzer reaches the too-large path and buffer growth cheaply.
const fuzzMaxLen = 64

// chunkReader hands out at most n bytes per Read, to split messages at every position.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	m := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[m:]
	return m, nil
}

// checkStreamEnd fails unless err is one a Reader may end a stream with.
func checkStreamEnd(t *testing.T, err error) {
	t.Helper()
	for _, want := range []error{io.EOF, io.ErrUnexpectedEOF, ErrTooLarge, ErrBadLength} {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("unexpected error %v", err)
}

// readMessages reads data with ReadMessage and returns the messages as re-encoded frames.
func readMessages(t *testing.T, data []byte, chunk int) ([]byte, error) {
	r := NewReader(&chunkReader{data, chunk}, fuzzMaxLen)
	var out []byte
	for {
		typ, body, err := r.ReadMessage()
		if err != nil {
			return out, err
		}
		if len(body)+4 > fuzzMaxLen {
			t.Fatalf("message of %d bytes over the limit of %d", len(body)+4, fuzzMaxLen)
		}
		out = AppendFrame(out, typ, body)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(frames(msg{'Q', "select 1\x00"}, msg{'X', ""}), uint8(0))
	f.Add([]byte{'Q', 0, 0, 0, 3}, uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		out, err := readMessages(t, data, int(chunk)+1)
		checkStreamEnd(t, err)
		// Every message read must be exactly the bytes of the stream, in order.
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("messages %q are not a prefix of the stream %q", out, data)
		}
	})
}

func FuzzReadFrames(f *testing.F) {
	f.Add(frames(msg{'P', "a\x00b\x00\x00\x00"}, msg{'B', ""}, msg{'S', ""}), uint8(255))
	f.Add(append(frames(msg{'Q', "x\x00"}), 'Q', 0, 1, 0, 0), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// A small first buffer, as a client session's, that must grow for longer messages.
		r := NewReaderSize(&chunkReader{data, int(chunk) + 1}, fuzzMaxLen, 64+int(chunk))
		var out []byte
		var err error
		for {
			var run []byte
			if run, err = r.ReadFrames(); err != nil {
				break
			}
			n := 0
			for rest := run; len(rest) > 0; n++ {
				var fr Frame
				var ok bool
				if fr, rest, ok = NextFrame(rest); !ok {
					t.Fatalf("run %q does not split into whole frames", run)
				}
				if len(fr.Raw) > fuzzMaxLen+1 {
					t.Fatalf("frame of %d bytes over the limit of %d", len(fr.Raw), fuzzMaxLen)
				}
			}
			if n == 0 {
				t.Fatal("ReadFrames returned no frame and no error")
			}
			out = append(out, run...)
		}
		checkStreamEnd(t, err)
		// ReadFrames must see the same messages, and stop for the same reason, as ReadMessage.
		want, wantErr := readMessages(t, data, int(chunk)+1)
		if !bytes.Equal(out, want) {
			t.Fatalf("ReadFrames read %q, ReadMessage %q", out, want)
		}
		if !errors.Is(err, unwrapAll(wantErr)) {
			t.Fatalf("ReadFrames ended with %v, ReadMessage with %v", err, wantErr)
		}
	})
}

func unwrapAll(err error) error {
	for errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return err
}

func FuzzParseStartup(f *testing.F) {
	f.Add(startupPacket(3<<16, "user\x00alice\x00database\x00app\x00\x00")[4:])
	f.Add(startupPacket(cancelRequestCode, "\x00\x00\x01\x00\xde\xad\xbe\xef")[4:])
	f.Add(startupPacket(sslRequestCode, "")[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		// Through the Reader first: a well-sized packet comes back as its body.
		packet := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
		got, err := NewReader(bytes.NewReader(append(packet, body...)), fuzzMaxLen).ReadStartup()
		if len(body) >= 4 && len(body)+4 <= MaxStartupLen && (err != nil || !bytes.Equal(got, body)) {
			t.Fatalf("ReadStartup = %q, %v; want the body back", got, err)
		}

		kind, params, _, err := ParseStartup(body)
		if kind < Unsupported || kind > CancelRequest {
			t.Fatalf("kind %d out of range", kind)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code.Name() == "" || pe.Severity != SeverityFatal {
				t.Fatalf("error %v is not a FATAL *Error from the table", err)
			}
			return
		}
		if kind != Startup {
			return
		}
		if params["user"] == "" || params["database"] == "" {
			t.Fatalf("params %q lack user or database", params)
		}
		// Encoding the parameters again gives a packet that parses to the same parameters.
		again := binary.BigEndian.AppendUint32(nil, 3<<16)
		for _, k := range slices.Sorted(maps.Keys(params)) {
			again = append(append(append(append(again, k...), 0), params[k]...), 0)
		}
		_, params2, _, err := ParseStartup(append(again, 0))
		if err != nil || !maps.Equal(params, params2) {
			t.Fatalf("re-encoded params %q parse to %q, %v", params, params2, err)
		}
	})
}

func FuzzSCRAMMessages(f *testing.F) {
	f.Add(saslInitialResponse("SCRAM-SHA-256", "n,,n=,r=abc")[5:], []byte("c=biws,r=abcdef,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	f.Add(saslInitialResponse("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc")[5:], []byte("c=eSws,r=abc,p="))
	f.Fuzz(func(t *testing.T, initial, final []byte) {
		first, err := parseSASLInitialResponse(initial)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Code.Name() == "" {
				t.Fatalf("error %v is not an *Error from the table", err)
			}
			return
		}
		if first.gs2Header != "n,," && first.gs2Header != "y,," || !printableNonce(first.nonce) {
			t.Fatalf("accepted client-first-message %+v", first)
		}
		fin, err := parseClientFinal(string(final), first.gs2Header, first.nonce+"server")
		if err == nil && len(fin.proof) != 32 {
			t.Fatalf("accepted a proof of %d bytes", len(fin.proof))
		}
	})
}

// FuzzAuthenticate plays arbitrary client bytes against each method. SCRAM's nonce is random,
// so past the first message this reaches only the refusals of the client-final-message.
func FuzzAuthenticate(f *testing.F) {
	f.Add(uint8(0), saslInitialResponse("SCRAM-SHA-256", "n,,n=,r=abc"))
	f.Add(uint8(1), AppendFrame(nil, 'p', []byte("md5d41d8cd98f00b204e9800998ecf8427e\x00")))
	f.Add(uint8(2), AppendFrame(nil, 'p', []byte("secret\x00")))
	f.Add(uint8(2), AppendFrame(nil, 'p', nil))
	methods := []AuthMethod{AuthSCRAM, AuthMD5, AuthPassword}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{nil, io.Discard}
		err := Authenticate(rw, NewReader(bytes.NewReader(data), 1024), methods[int(method)%len(methods)], "alice", "secret", true)
		var pe *Error
		if err != nil && !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Authenticate = %v, want an *Error or the end of the stream", err)
		}
		if pe != nil && pe.Code.Name() == "" {
			t.Fatalf("SQLSTATE %s is not in the table", pe.Code)
		}
	})
}
