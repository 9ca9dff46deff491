package kv

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// arg is a parameter value as Bind delivered it, decoded by its type and format.
type arg struct {
	null  bool
	b     []byte // text; the bytes of a bytea
	n     int64  // an integer sent in binary
	isInt bool
}

// decodeArg decodes one Bind parameter. v is only valid until the next message, so what is
// kept is copied.
func decodeArg(oid uint32, binaryFormat bool, v []byte) (arg, error) {
	if v == nil {
		return arg{null: true}, nil
	}
	if !binaryFormat {
		if oid == pgserver.OIDBytea {
			b, err := byteaIn(v)
			return arg{b: b}, err
		}
		return arg{b: clone(v)}, nil
	}
	bad := func() (arg, error) {
		return arg{}, pgserver.Errorf(codeBinaryRepresent, "incorrect binary data format in bind parameter")
	}
	switch oid {
	case pgserver.OIDInt2:
		if len(v) != 2 {
			return bad()
		}
		return arg{n: int64(int16(binary.BigEndian.Uint16(v))), isInt: true}, nil
	case pgserver.OIDInt4:
		if len(v) != 4 {
			return bad()
		}
		return arg{n: int64(int32(binary.BigEndian.Uint32(v))), isInt: true}, nil
	case pgserver.OIDInt8:
		if len(v) != 8 {
			return bad()
		}
		return arg{n: int64(binary.BigEndian.Uint64(v)), isInt: true}, nil
	case pgserver.OIDJSONB:
		if len(v) < 1 || v[0] != 1 {
			return bad()
		}
		return arg{b: clone(v[1:])}, nil
	case pgserver.OIDBytea, pgserver.OIDText, pgserver.OIDVarchar, pgserver.OIDBPChar, pgserver.OIDName, pgserver.OIDJSON, pgserver.OIDUnknown, pgserver.OIDUnknownLit:
		return arg{b: clone(v)}, nil
	}
	return arg{}, pgserver.Errorf(codeFeatureNotSupported, "binary format for parameter type %d is not supported by kv; send it as text", oid)
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// byteaIn reads bytea's text input: hex ("\x0aff") or escape format (bytes as themselves, "\\"
// for a backslash, "\ooo" octal).
func byteaIn(t []byte) ([]byte, error) {
	if len(t) >= 2 && t[0] == '\\' && t[1] == 'x' {
		h := t[2:]
		if len(h)%2 != 0 {
			return nil, pgserver.Errorf(codeInvalidText, "invalid hexadecimal data: odd number of digits")
		}
		out := make([]byte, len(h)/2)
		if _, err := hex.Decode(out, h); err != nil {
			return nil, pgserver.Errorf(codeInvalidText, "invalid hexadecimal digit")
		}
		return out, nil
	}
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		switch {
		case i+1 < len(t) && t[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(t) && isOctal(t[i+1]) && t[i+1] <= '3' && isOctal(t[i+2]) && isOctal(t[i+3]):
			out = append(out, (t[i+1]-'0')<<6|(t[i+2]-'0')<<3|(t[i+3]-'0'))
			i += 3
		default:
			return nil, pgserver.Errorf(codeInvalidText, "invalid input syntax for type bytea")
		}
	}
	return out, nil
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// values resolves a statement's operands against the parameters bound to it.
type values []arg

func (vs values) param(op operand) arg { return vs[op.param-1] }

// text resolves an operand standing for text (a key, a pattern, a cursor).
func (vs values) text(op operand, what string) (s string, null bool, err error) {
	switch op.kind {
	case opParam:
		a := vs.param(op)
		if a.isInt {
			return strconv.FormatInt(a.n, 10), false, nil
		}
		return string(a.b), a.null, nil
	case opString:
		return op.text, false, nil
	case opNull:
		return "", true, nil
	}
	return "", false, pgserver.Errorf(codeDatatypeMismatch, "%s is text: quote the value", what)
}

// bytes resolves the value operand of a put.
func (vs values) bytes(op operand) (b []byte, null bool, err error) {
	switch op.kind {
	case opParam:
		a := vs.param(op)
		if a.isInt {
			return nil, false, pgserver.Errorf(codeDatatypeMismatch, "value is bytea, not an integer")
		}
		return a.b, a.null, nil
	case opString:
		b, err := byteaIn([]byte(op.text))
		return b, false, err
	case opNull:
		return nil, true, nil
	}
	return nil, false, pgserver.Errorf(codeDatatypeMismatch, "value is bytea: pass it as a parameter or a '\\x...' literal")
}

// json resolves the metadata operand of a put, which must be JSON.
func (vs values) json(op operand) (b []byte, null bool, err error) {
	switch op.kind {
	case opParam:
		a := vs.param(op)
		if a.null {
			return nil, true, nil
		}
		b = a.b
		if a.isInt {
			b = strconv.AppendInt(nil, a.n, 10)
		}
	case opString:
		b = []byte(op.text)
	case opNull:
		return nil, true, nil
	default:
		return nil, false, pgserver.Errorf(codeDatatypeMismatch, "metadata is json: quote the value")
	}
	if !json.Valid(b) {
		return nil, false, pgserver.Errorf(codeInvalidText, "invalid input syntax for type json")
	}
	return b, false, nil
}

// integer resolves an operand standing for a bigint (expiration, expiration_ttl, LIMIT).
func (vs values) integer(op operand) (n int64, null bool, err error) {
	var t string
	switch op.kind {
	case opParam:
		a := vs.param(op)
		if a.null || a.isInt {
			return a.n, a.null, nil
		}
		t = string(a.b)
	case opString, opNumber:
		t = op.text
	case opNull:
		return 0, true, nil
	}
	n, err = strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil {
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return 0, false, pgserver.Errorf(codeInvalidText, "invalid input syntax for type bigint: %q", t)
	}
	return n, false, nil
}

// likePrefix reads a LIKE pattern with PostgreSQL's default escape (backslash): a literal
// prefix, then '%' to the end. exact is true for a pattern without '%', which matches one key.
// '_' and a '%' before the end would need a scan, which a KV listing doesn't do.
func likePrefix(pat string) (prefix string, exact bool, err error) {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 == len(pat) {
				return "", false, pgserver.Errorf(codeInvalidEscape, "LIKE pattern must not end with escape character")
			}
			i++
			b.WriteByte(pat[i])
		case '%':
			if strings.Trim(pat[i:], "%") != "" {
				return "", false, &parseError{"LIKE patterns are prefixes: '%' may only end the pattern"}
			}
			return b.String(), false, nil
		case '_':
			return "", false, &parseError{`LIKE patterns are prefixes: '_' matches any character; write \_ for an underscore`}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true, nil
}

// appendColumn appends column c of e in the given format; ok is false for NULL.
func appendColumn(dst []byte, e *entry, c column, binaryFormat bool) ([]byte, bool) {
	switch c {
	case colKey:
		return append(dst, e.key...), true
	case colValue:
		if binaryFormat {
			return append(dst, e.value...), true
		}
		dst = append(dst, '\\', 'x')
		return hex.AppendEncode(dst, e.value), true
	case colMetadata:
		if e.metadata == nil {
			return dst, false
		}
		return append(dst, e.metadata...), true
	case colExpiration:
		if !e.expires {
			return dst, false
		}
		if binaryFormat {
			return binary.BigEndian.AppendUint64(dst, uint64(e.expiration)), true
		}
		return strconv.AppendInt(dst, e.expiration, 10), true
	}
	return dst, false
}
