package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"
)

// msg is one typed message as a test expects it back.
type msg struct {
	typ  byte
	body string
}

func frames(msgs ...msg) []byte {
	var b []byte
	for _, m := range msgs {
		b = AppendFrame(b, m.typ, []byte(m.body))
	}
	return b
}

func TestReaderReadMessage(t *testing.T) {
	big := strings.Repeat("x", 3*readChunk+17)
	tests := []struct {
		name     string
		input    []byte
		maxLen   int
		oneByte  bool // deliver the input one byte per Read
		want     []msg
		wantErr  error
		wantText string // a substring of the final error, when it matters
	}{
		{name: "a message split into one-byte reads is reassembled",
			input: frames(msg{'Q', "select 1\x00"}), maxLen: 100, oneByte: true,
			want: []msg{{'Q', "select 1\x00"}}, wantErr: io.EOF},
		{name: "pipelined messages are read one at a time",
			input: frames(msg{'P', "s\x00q\x00\x00\x00"}, msg{'B', ""}, msg{'S', ""}), maxLen: 100,
			want: []msg{{'P', "s\x00q\x00\x00\x00"}, {'B', ""}, {'S', ""}}, wantErr: io.EOF},
		{name: "a message larger than the read chunk grows the buffer",
			input: frames(msg{'d', big}, msg{'c', ""}), maxLen: 1 << 20,
			want: []msg{{'d', big}, {'c', ""}}, wantErr: io.EOF},
		{name: "a message over the limit is refused before its body arrives",
			input: []byte{'Q', 0, 0, 1, 0}, maxLen: 100, wantErr: ErrTooLarge, wantText: `'Q'`},
		{name: "a length below four is refused",
			input: []byte{'Q', 0, 0, 0, 3}, maxLen: 100, wantErr: ErrBadLength},
		{name: "a length that is negative as int32 is refused as too large",
			input: []byte{'Q', 0xff, 0xff, 0xff, 0xff}, maxLen: 100, wantErr: ErrTooLarge},
		{name: "a stream cut inside a header ends with an unexpected EOF",
			input: []byte{'Q', 0, 0}, maxLen: 100, oneByte: true, wantErr: io.ErrUnexpectedEOF},
		{name: "a stream cut inside a body ends with an unexpected EOF",
			input: frames(msg{'Q', "select 1\x00"})[:8], maxLen: 100, wantErr: io.ErrUnexpectedEOF},
		{name: "an empty stream ends with EOF",
			input: nil, maxLen: 100, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tt.input)
			if tt.oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, tt.maxLen)
			var got []msg
			var err error
			for {
				var typ byte
				var body []byte
				if typ, body, err = r.ReadMessage(); err != nil {
					break
				}
				got = append(got, msg{typ, string(body)})
			}
			if !equalMsgs(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantText)
			}
		})
	}
}

func equalMsgs(a, b []msg) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderReadFrames(t *testing.T) {
	three := frames(msg{'P', "a\x00b\x00\x00\x00"}, msg{'E', "\x00\x00\x00\x00\x00"}, msg{'S', ""})
	tests := []struct {
		name    string
		input   []byte
		oneByte bool
		want    [][]byte // the runs returned by successive calls
		wantErr error
	}{
		{name: "pipelined frames already buffered come back in one call",
			input: three, want: [][]byte{three}, wantErr: io.EOF},
		{name: "frames trickling in come back one by one as they complete",
			input: three, oneByte: true,
			want: [][]byte{three[:11], three[11:21], three[21:]}, wantErr: io.EOF},
		{name: "a stream cut inside the second frame returns the first then an unexpected EOF",
			input: three[:20], want: [][]byte{three[:11]}, wantErr: io.ErrUnexpectedEOF},
		{name: "a bad length after good frames is reported by the next call",
			input: append(frames(msg{'Q', "x\x00"}), 'Q', 0, 0, 0, 1), want: [][]byte{frames(msg{'Q', "x\x00"})},
			wantErr: ErrBadLength},
		{name: "an oversized frame after good frames is reported by the next call",
			input: append(frames(msg{'Q', "x\x00"}), 'Q', 0, 1, 0, 0), want: [][]byte{frames(msg{'Q', "x\x00"})},
			wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tt.input)
			if tt.oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, 100)
			var got [][]byte
			var err error
			for {
				var f []byte
				if f, err = r.ReadFrames(); err != nil {
					break
				}
				got = append(got, bytes.Clone(f))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("runs = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("run %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNextFrameSplitsARun(t *testing.T) {
	run := frames(msg{'B', "1"}, msg{'E', ""}, msg{'S', "22"})
	var got []msg
	for {
		f, rest, ok := NextFrame(run)
		if !ok {
			if len(rest) != 0 {
				t.Errorf("left over %q", rest)
			}
			break
		}
		if !bytes.Equal(f.Raw, AppendFrame(nil, f.Type, f.Body)) {
			t.Errorf("Raw %q does not match type %q and body %q", f.Raw, f.Type, f.Body)
		}
		got = append(got, msg{f.Type, string(f.Body)})
		run = rest
	}
	if want := []msg{{'B', "1"}, {'E', ""}, {'S', "22"}}; !equalMsgs(got, want) {
		t.Errorf("frames = %q, want %q", got, want)
	}
}

func startupPacket(code uint32, tail string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(tail)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, tail...)
}

func TestReaderReadStartup(t *testing.T) {
	tests := []struct {
		name    string
		input   []byte
		want    []byte
		wantErr error
	}{
		{name: "an SSLRequest is returned without its length",
			input: startupPacket(sslRequestCode, ""), want: []byte{0x04, 0xd2, 0x16, 0x2f}},
		{name: "a startup packet over the limit is refused",
			input: []byte{0, 0, 0x27, 0x11}, wantErr: ErrTooLarge},
		{name: "a startup packet shorter than its code is refused",
			input: []byte{0, 0, 0, 7}, wantErr: ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewReader(iotest.OneByteReader(bytes.NewReader(tt.input)), 100).ReadStartup()
			if !bytes.Equal(got, tt.want) || !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadStartup = %x, %v; want %x, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStartup(t *testing.T) {
	v3 := uint32(3 << 16)
	tests := []struct {
		name       string
		body       []byte
		wantKind   StartupKind
		wantParams map[string]string
		wantCancel CancelKey
		wantCode   Code // "" for no error
	}{
		{name: "a 3.0 startup message yields its parameters",
			body:     startupPacket(v3, "user\x00alice\x00database\x00app\x00application_name\x00psql\x00\x00")[4:],
			wantKind: Startup, wantParams: map[string]string{"user": "alice", "database": "app", "application_name": "psql"}},
		{name: "the database defaults to the user name",
			body:     startupPacket(v3, "user\x00alice\x00\x00")[4:],
			wantKind: Startup, wantParams: map[string]string{"user": "alice", "database": "alice"}},
		{name: "a 3.2 startup message is accepted like 3.0",
			body:     startupPacket(v3|2, "user\x00alice\x00_pq_.x\x00y\x00\x00")[4:],
			wantKind: Startup, wantParams: map[string]string{"user": "alice", "database": "alice", "_pq_.x": "y"}},
		{name: "a startup message without a user is refused with 28000",
			body:     startupPacket(v3, "database\x00app\x00\x00")[4:],
			wantKind: Startup, wantCode: InvalidAuthorizationSpecification},
		{name: "a startup message without the final terminator is a protocol violation",
			body:     startupPacket(v3, "user\x00alice\x00")[4:],
			wantKind: Startup, wantCode: ProtocolViolation},
		{name: "a startup message with bytes after the terminator is a protocol violation",
			body:     startupPacket(v3, "user\x00alice\x00\x00junk")[4:],
			wantKind: Startup, wantCode: ProtocolViolation},
		{name: "a name without a value is a protocol violation",
			body:     startupPacket(v3, "user\x00")[4:],
			wantKind: Startup, wantCode: ProtocolViolation},
		{name: "an SSLRequest is recognized",
			body: startupPacket(sslRequestCode, "")[4:], wantKind: SSLRequest},
		{name: "a GSSENCRequest is recognized",
			body: startupPacket(gssEncRequestCode, "")[4:], wantKind: GSSEncRequest},
		{name: "an SSLRequest with extra bytes is a protocol violation",
			body: startupPacket(sslRequestCode, "x")[4:], wantKind: SSLRequest, wantCode: ProtocolViolation},
		{name: "a CancelRequest yields its key",
			body:     startupPacket(cancelRequestCode, "\x00\x00\x01\x00\xde\xad\xbe\xef")[4:],
			wantKind: CancelRequest, wantCancel: CancelKey{PID: 256, Secret: 0xdeadbeef}},
		{name: "a CancelRequest with a long secret is refused",
			body:     startupPacket(cancelRequestCode, "\x00\x00\x01\x00"+strings.Repeat("k", 32))[4:],
			wantKind: CancelRequest, wantCode: ProtocolViolation},
		{name: "protocol 2.0 is unsupported",
			body: startupPacket(2<<16, "user\x00alice\x00\x00")[4:], wantKind: Unsupported, wantCode: FeatureNotSupported},
		{name: "a body shorter than a version is a protocol violation",
			body: []byte{0, 3}, wantKind: Unsupported, wantCode: ProtocolViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, params, cancel, err := ParseStartup(tt.body)
			if kind != tt.wantKind || cancel != tt.wantCancel || !maps.Equal(params, tt.wantParams) {
				t.Errorf("ParseStartup = %v, %v, %+v; want %v, %v, %+v", kind, params, cancel, tt.wantKind, tt.wantParams, tt.wantCancel)
			}
			var pe *Error
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("error = %v, want none", err)
			case tt.wantCode != "" && (!errors.As(err, &pe) || pe.Code != tt.wantCode || pe.Severity != SeverityFatal):
				t.Errorf("error = %v, want FATAL %s", err, tt.wantCode)
			}
		})
	}
}

func TestStartupVersionReportsTheRequestedMinor(t *testing.T) {
	if major, minor := StartupVersion(startupPacket(3<<16|2, "")[4:]); major != 3 || minor != 2 {
		t.Errorf("StartupVersion = %d.%d, want 3.2", major, minor)
	}
}

func TestAppendErrorIsAnErrorResponse(t *testing.T) {
	e := &Error{Severity: SeverityFatal, Code: InvalidPassword, Message: "bad\x00 password", Detail: "d", Hint: "h"}
	buf := AppendError([]byte("prefix"), e)
	if !bytes.HasPrefix(buf, []byte("prefix")) {
		t.Fatalf("AppendError overwrote dst: %q", buf)
	}
	f, rest, ok := NextFrame(buf[len("prefix"):])
	if !ok || len(rest) != 0 || f.Type != 'E' {
		t.Fatalf("not one ErrorResponse frame: %q", buf)
	}
	var got pgproto3.ErrorResponse
	if err := got.Decode(f.Body); err != nil {
		t.Fatal(err)
	}
	want := pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "28P01",
		Message: "bad password", Detail: "d", Hint: "h"}
	if got.Severity != want.Severity || got.SeverityUnlocalized != want.SeverityUnlocalized || got.Code != want.Code ||
		got.Message != want.Message || got.Detail != want.Detail || got.Hint != want.Hint {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

func TestAppendErrorDoesNotAllocateIntoRoom(t *testing.T) {
	e := Fatal(TooManyConnections, "sorry, too many clients already")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { AppendError(buf[:0], e) }); n != 0 {
		t.Errorf("AppendError allocates %v times", n)
	}
}

func TestAppendReadyForQuery(t *testing.T) {
	var got pgproto3.ReadyForQuery
	f, _, ok := NextFrame(AppendReadyForQuery(nil, TxFailed))
	if !ok || f.Type != 'Z' || got.Decode(f.Body) != nil || got.TxStatus != 'E' {
		t.Errorf("AppendReadyForQuery: %q", f.Raw)
	}
}

// TestEveryCodeIsInTheTable completes init's check of the codes table: every Code constant
// declared in errors.go must be in it, so that no code is sent without a name.
func TestEveryCodeIsInTheTable(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, name := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit).Value
				if Code(strings.Trim(lit, `"`)).Name() == "" {
					t.Errorf("%s = %s is not in the codes table", name.Name, lit)
				}
				n++
			}
		}
	}
	if n != len(codes) {
		t.Errorf("%d Code constants, %d table entries", n, len(codes))
	}
}
