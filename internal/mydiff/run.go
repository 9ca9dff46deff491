package mydiff

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Exchange is one step and what came back for it.
type Exchange struct {
	Step    Step
	Packets []Packet
	// Closed says the server closed the connection after the packets (after COM_QUIT, or
	// a refusal that ends the session).
	Closed bool
}

// Transcript is what one server answered to a script.
type Transcript struct {
	Greeting  Greeting
	Caps      uint64 // negotiated
	Exchanges []Exchange
}

// respKind is how the answer to a command ends.
type respKind int

const (
	rNone      respKind = iota // no answer (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA)
	rOne                       // one packet
	rResult                    // OK, ERR or result sets (COM_QUERY, COM_STMT_EXECUTE)
	rPrepare                   // COM_STMT_PREPARE
	rFetch                     // rows up to EOF, or ERR
	rFieldList                 // column definitions up to EOF, or ERR
	rQuit                      // nothing; the server closes
)

// stmtInfo is what a server said about a statement a script prepared.
type stmtInfo struct {
	id           uint32
	params, cols uint16
	bound        bool // types were sent once
}

// runner runs one script on one connection.
type runner struct {
	c     *Conn
	stmts map[string]*stmtInfo
	last  *stmtInfo
	ex    *Exchange // being read
}

// retag sets the role of the last packet read.
func (r *runner) retag(role Role) {
	if n := len(r.ex.Packets); n > 0 && r.ex.Packets[n-1].Role != RoleERR {
		r.ex.Packets[n-1].Role = role
	}
}

// oneRole is the role of a lone answer packet.
func oneRole(p []byte, deprecateEOF bool) Role {
	switch {
	case p[0] == 0x00:
		return RoleOK
	case p[0] == 0xff:
		return RoleERR
	case isEnd(p, deprecateEOF):
		return RoleEOF
	}
	return RoleOther
}

// Run logs in to addr with the script's capabilities and runs it, returning what came back.
// It fails only when the connection fails where the script did not expect it; what a server
// answers, errors included, is in the transcript.
func Run(ctx context.Context, addr string, o Options, s Script) (*Transcript, error) {
	o.Caps = s.Caps
	c, err := Dial(ctx, addr, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	t := &Transcript{Greeting: c.Greeting, Caps: c.Caps}
	r := &runner{c: c, stmts: make(map[string]*stmtInfo)}
	var pending []Step
	for _, st := range s.Steps {
		pending = append(pending, st)
		if st.Pipelined {
			continue
		}
		var out []byte
		kinds := make([]respKind, len(pending))
		for i, p := range pending {
			var cmd []byte
			cmd, kinds[i], err = r.command(p)
			if err != nil {
				return t, fmt.Errorf("mydiff: %s:%d: %w", s.Name, p.Line, err)
			}
			out = AppendPacket(out, 0, cmd)
		}
		if err := c.Write(out); err != nil {
			return t, fmt.Errorf("mydiff: %s:%d: write: %w", s.Name, st.Line, err)
		}
		for i, p := range pending {
			ex, err := r.read(p, kinds[i])
			t.Exchanges = append(t.Exchanges, ex)
			if err != nil {
				return t, fmt.Errorf("mydiff: %s:%d: %w", s.Name, p.Line, err)
			}
			if ex.Closed {
				return t, nil
			}
		}
		pending = pending[:0]
	}
	return t, nil
}

// stmt returns the statement an argument names: a name a prepare gave, "last" (id
// 0xffffffff, MariaDB's "the statement just prepared"), or a number.
func (r *runner) stmt(name string) *stmtInfo {
	if st := r.stmts[name]; st != nil {
		return st
	}
	if name == "last" {
		st := &stmtInfo{id: 0xffffffff}
		if r.last != nil {
			st.params, st.cols = r.last.params, r.last.cols
		}
		return st
	}
	id, _ := strconv.ParseUint(name, 10, 32)
	return &stmtInfo{id: uint32(id)}
}

// command encodes a step's command packet payload.
func (r *runner) command(st Step) ([]byte, respKind, error) {
	a := st.Args
	switch st.Verb {
	case "query":
		return append([]byte{mysql.COM_QUERY}, a[0]...), rResult, nil
	case "prepare":
		info := &stmtInfo{}
		r.stmts[a[0]], r.last = info, info
		return append([]byte{mysql.COM_STMT_PREPARE}, a[1]...), rPrepare, nil
	case "execute":
		return r.execute(a)
	case "fetch":
		n, err := strconv.ParseUint(a[1], 10, 32)
		if err != nil {
			return nil, 0, fmt.Errorf("bad row count %q", a[1])
		}
		b := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_FETCH}, r.stmt(a[0]).id)
		return binary.LittleEndian.AppendUint32(b, uint32(n)), rFetch, nil
	case "close":
		return binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_CLOSE}, r.stmt(a[0]).id), rNone, nil
	case "reset":
		return binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_RESET}, r.stmt(a[0]).id), rOne, nil
	case "longdata":
		n, err := strconv.ParseUint(a[1], 10, 16)
		if err != nil {
			return nil, 0, fmt.Errorf("bad parameter number %q", a[1])
		}
		b := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_SEND_LONG_DATA}, r.stmt(a[0]).id)
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
		return append(b, a[2]...), rNone, nil
	case "initdb":
		return append([]byte{mysql.COM_INIT_DB}, a[0]...), rOne, nil
	case "ping":
		return []byte{mysql.COM_PING}, rOne, nil
	case "statistics":
		return []byte{mysql.COM_STATISTICS}, rOne, nil
	case "resetconn":
		return []byte{mysql.COM_RESET_CONNECTION}, rOne, nil
	case "fieldlist":
		b := append(append([]byte{mysql.COM_FIELD_LIST}, a[0]...), 0)
		if len(a) > 1 {
			b = append(b, a[1]...)
		}
		return b, rFieldList, nil
	case "setoption":
		v := map[string]byte{"on": 0, "off": 1}
		o, ok := v[a[0]]
		if !ok {
			n, err := strconv.ParseUint(a[0], 10, 16)
			if err != nil {
				return nil, 0, fmt.Errorf("setoption on|off|N")
			}
			return binary.LittleEndian.AppendUint16([]byte{mysql.COM_SET_OPTION}, uint16(n)), rOne, nil
		}
		return []byte{mysql.COM_SET_OPTION, o, 0}, rOne, nil
	case "raw":
		b, err := hex.DecodeString(strings.Join(a, ""))
		if err != nil || len(b) == 0 {
			return nil, 0, fmt.Errorf("raw takes the command packet's payload in hex")
		}
		return b, rOne, nil
	case "quit":
		return []byte{mysql.COM_QUIT}, rQuit, nil
	}
	return nil, 0, fmt.Errorf("unknown command %q", st.Verb)
}

// execute encodes COM_STMT_EXECUTE: NAME [cursor] [nobind] [params...]. Parameter types are
// sent (new-params-bound 1) unless nobind asks to rely on those sent before.
func (r *runner) execute(a []string) ([]byte, respKind, error) {
	st := r.stmt(a[0])
	a = a[1:]
	flags, rebind := byte(0), true
	for ; len(a) > 0 && (a[0] == "cursor" || a[0] == "nobind"); a = a[1:] {
		if a[0] == "cursor" {
			flags = mysql.CURSOR_TYPE_READ_ONLY
		} else {
			rebind = false
		}
	}
	ps, err := parseParams(a)
	if err != nil {
		return nil, 0, err
	}
	b := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_EXECUTE}, st.id)
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, 1)
	if len(ps) > 0 {
		nulls := make([]byte, (len(ps)+7)/8)
		for i, p := range ps {
			if p.null {
				nulls[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, nulls...)
		if rebind || !st.bound {
			b = append(b, 1)
			for _, p := range ps {
				b = append(b, p.typ, 0)
			}
			st.bound = true
		} else {
			b = append(b, 0)
		}
		for _, p := range ps {
			b = append(b, p.value...)
		}
	}
	return b, rResult, nil
}

// read reads the answer to one step.
func (r *runner) read(st Step, kind respKind) (Exchange, error) {
	ex := Exchange{Step: st}
	r.ex = &ex
	next := func(role Role) ([]byte, error) {
		p, err := r.c.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) && len(p.Seqs) == 0 {
				ex.Closed = true
			}
			return nil, err
		}
		p.Role = role
		if len(p.Payload) > 0 && p.Payload[0] == 0xff {
			p.Role = RoleERR
		}
		ex.Packets = append(ex.Packets, p)
		return p.Payload, nil
	}
	var err error
	switch kind {
	case rNone:
		return ex, nil
	case rQuit:
		_, err = next(RoleOther)
		if ex.Closed {
			return ex, nil
		}
		if err == nil {
			err = errors.New("the server answered COM_QUIT")
		}
	case rOne:
		var p []byte
		if p, err = next(RoleOther); err == nil && len(p) > 0 {
			ex.Packets[0].Role = oneRole(p, r.deprecateEOF())
		}
	case rResult:
		err = r.readResults(next)
	case rPrepare:
		err = r.readPrepare(st, next)
	case rFetch:
		err = r.readRows(next, nil)
	case rFieldList:
		for {
			var p []byte
			if p, err = next(RoleColumn); err != nil || len(p) > 0 && (p[0] == 0xff || isEnd(p, r.deprecateEOF())) {
				if err == nil && p[0] == 0xfe {
					ex.Packets[len(ex.Packets)-1].Role = RoleEOF
				}
				break
			}
		}
	}
	if ex.Closed {
		// A server may end the session after an error; the transcript says so.
		return ex, nil
	}
	return ex, err
}

func (r *runner) deprecateEOF() bool { return r.c.Caps&uint64(mysql.CLIENT_DEPRECATE_EOF) != 0 }

// isEnd says whether p ends rows or column definitions: an EOF packet, or with
// CLIENT_DEPRECATE_EOF an OK packet with the EOF header.
func isEnd(p []byte, deprecateEOF bool) bool {
	if len(p) == 0 || p[0] != 0xfe {
		return false
	}
	if deprecateEOF {
		return len(p) < maxPayload
	}
	return len(p) < 9
}

// endStatus is the status flags of an EOF or OK packet (header 0x00 or 0xfe).
func endStatus(p []byte) uint16 {
	if len(p) == 5 && p[0] == 0xfe { // EOF: header, warnings, status
		return binary.LittleEndian.Uint16(p[3:])
	}
	_, _, n := mysql.LengthEncodedInt(p[1:])
	if 1+n > len(p) {
		return 0
	}
	_, _, m := mysql.LengthEncodedInt(p[1+n:])
	if 1+n+m+2 > len(p) {
		return 0
	}
	return binary.LittleEndian.Uint16(p[1+n+m:])
}

// readResults reads OK, ERR or result sets, as long as the last says more results exist.
func (r *runner) readResults(next func(Role) ([]byte, error)) error {
	for {
		p, err := next(RoleCount)
		if err != nil {
			return err
		}
		var status uint16
		switch {
		case len(p) == 0:
			return errors.New("empty packet")
		case p[0] == 0xff:
			return nil
		case p[0] == 0x00:
			r.retag(RoleOK)
			status = endStatus(p)
		case p[0] == 0xfb:
			// LOCAL INFILE request: the harness sends no file.
			if err := r.c.WritePacket(2, nil); err != nil {
				return err
			}
			continue
		default:
			n, _, _ := mysql.LengthEncodedInt(p)
			if n > 4096 {
				return fmt.Errorf("column count %d", n)
			}
			for range n {
				if _, err := next(RoleColumn); err != nil {
					return err
				}
			}
			if !r.deprecateEOF() {
				q, err := next(RoleEOF)
				if err != nil {
					return err
				}
				if status = endStatus(q); status&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
					break
				}
			}
			if err := r.readRows(next, &status); err != nil {
				return err
			}
		}
		if status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
			return nil
		}
	}
}

// readRows reads rows up to their end (status set from it) or an ERR.
func (r *runner) readRows(next func(Role) ([]byte, error), status *uint16) error {
	for {
		p, err := next(RoleRow)
		if err != nil {
			return err
		}
		if len(p) > 0 && p[0] == 0xff {
			if status != nil {
				*status = 0
			}
			return nil
		}
		if isEnd(p, r.deprecateEOF()) {
			r.retag(RoleEOF)
			if status != nil {
				*status = endStatus(p)
			}
			return nil
		}
	}
}

// readPrepare reads COM_STMT_PREPARE's answer and remembers the statement.
func (r *runner) readPrepare(st Step, next func(Role) ([]byte, error)) error {
	p, err := next(RolePrepare)
	if err != nil {
		return err
	}
	if len(p) == 0 || p[0] == 0xff {
		return nil
	}
	if len(p) < 12 || p[0] != 0 {
		return fmt.Errorf("malformed prepare OK")
	}
	info := r.stmts[st.Args[0]]
	info.id = binary.LittleEndian.Uint32(p[1:])
	info.cols = binary.LittleEndian.Uint16(p[5:])
	info.params = binary.LittleEndian.Uint16(p[7:])
	for i, n := range []uint16{info.params, info.cols} {
		for range n {
			if _, err := next([]Role{RoleParam, RoleColumn}[i]); err != nil {
				return err
			}
		}
		if n > 0 && !r.deprecateEOF() {
			if _, err := next(RoleEOF); err != nil {
				return err
			}
		}
	}
	return nil
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func mathFloat64bits(f float64) uint64 { return math.Float64bits(f) }
