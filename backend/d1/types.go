package d1

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// oidForDecltype maps a declared SQLite column type to a PostgreSQL type by SQLite's own
// affinity rules (https://sqlite.org/datatype3.html §3.1), with BOOL split out because drivers
// scan it into booleans. It returns pgserver.OIDUnknown for a type with no fixed class (NUMERIC, DATE,
// JSON, none): such a column can hold any storage class.
func oidForDecltype(decl string) uint32 {
	if decl == "" {
		return pgserver.OIDUnknown
	}
	d := strings.ToUpper(decl)
	switch {
	case strings.Contains(d, "INT"):
		return pgserver.OIDInt8
	case strings.Contains(d, "BOOL"):
		return pgserver.OIDBool
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return pgserver.OIDText
	case strings.Contains(d, "BLOB"), strings.Contains(d, "BYTEA"):
		return pgserver.OIDBytea
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return pgserver.OIDFloat8
	}
	return pgserver.OIDUnknown
}

// resultOID is the type of a result column: from its declared type, else from the storage class
// of its first value, else unknown (the client picks the type from its destination).
func resultOID(decl string, class int) uint32 {
	if oid := oidForDecltype(decl); oid != pgserver.OIDUnknown {
		return oid
	}
	switch class {
	case sqlInteger:
		return pgserver.OIDInt8
	case sqlFloat:
		return pgserver.OIDFloat8
	case sqlText:
		return pgserver.OIDText
	case sqlBlob:
		return pgserver.OIDBytea
	}
	return pgserver.OIDUnknown
}

// appendValue appends column i of the current row, in the given format, for a column of type
// oid, to dst; ok is false for NULL. A value whose storage class doesn't match the column type
// is converted the way SQLite converts (CAST semantics) when the binary format needs a fixed
// size, and rendered as itself in text.
func appendValue(dst []byte, s *stmt, i int, oid uint32, binaryFormat bool) ([]byte, bool) {
	class := s.columnType(i)
	if class == sqlNull {
		return dst, false
	}
	if binaryFormat {
		switch oid {
		case pgserver.OIDInt8:
			return binary.BigEndian.AppendUint64(dst, uint64(s.columnInt64(i))), true
		case pgserver.OIDFloat8:
			return binary.BigEndian.AppendUint64(dst, math.Float64bits(s.columnDouble(i))), true
		case pgserver.OIDBool:
			if class == sqlText {
				t, _ := parseBool(s.columnText(i))
				return append(dst, b2i(t)), true
			}
			return append(dst, b2i(s.columnInt64(i) != 0)), true
		case pgserver.OIDBytea:
			if class == sqlText {
				if b, ok := hexBytea(s.columnText(i)); ok {
					return append(dst, b...), true
				}
			}
			return append(dst, s.columnBlob(i)...), true
		default:
			return append(dst, s.columnText(i)...), true
		}
	}
	switch class {
	case sqlInteger:
		v := s.columnInt64(i)
		if oid == pgserver.OIDBool {
			if v != 0 {
				return append(dst, 't'), true
			}
			return append(dst, 'f'), true
		}
		return strconv.AppendInt(dst, v, 10), true
	case sqlFloat:
		return appendFloat(dst, s.columnDouble(i)), true
	case sqlBlob:
		return appendHexBytea(dst, s.columnBlob(i)), true
	default:
		t := s.columnText(i)
		if oid == pgserver.OIDBytea {
			// Text in a BLOB column: a bytea literal ('\x..', as the simple protocol writes bytes)
			// stands for its bytes; anything else for its own bytes.
			if _, ok := hexBytea(t); ok {
				return append(dst, t...), true
			}
			return appendHexBytea(dst, t), true
		}
		return append(dst, t...), true
	}
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendFloat writes v as PostgreSQL's float8 output does (shortest exact form).
func appendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(v, -1):
		return append(dst, "-Infinity"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendHexBytea writes b in bytea's hex output format.
func appendHexBytea(dst, b []byte) []byte {
	dst = append(dst, '\\', 'x')
	return hex.AppendEncode(dst, b)
}

// hexBytea decodes a bytea hex literal ("\x0a0b"), reporting whether t is one.
func hexBytea(t []byte) ([]byte, bool) {
	if len(t) < 2 || t[0] != '\\' || t[1] != 'x' || len(t)%2 != 0 {
		return nil, false
	}
	b, err := hex.DecodeString(string(t[2:]))
	if err != nil {
		return nil, false
	}
	return b, true
}

// parseBool accepts PostgreSQL's boolean input spellings.
func parseBool(t []byte) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(string(t))) {
	case "t", "true", "y", "yes", "on", "1":
		return true, true
	case "f", "false", "n", "no", "off", "0":
		return false, true
	}
	return false, false
}
