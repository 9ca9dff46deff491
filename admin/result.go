package admin

import (
	"strconv"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Column types, as PgBouncer's console declares them: text, int4, int8, numeric. Timestamps
// are text ('T' in PgBouncer), written as "2006-01-02 15:04:05 UTC".
const (
	oidText    = 25
	oidInt4    = 23
	oidInt8    = 20
	oidNumeric = 1700
)

// col is one column of a result: its name and type.
type col struct {
	name string
	oid  uint32
}

// cols builds columns from a PgBouncer-style type string (s text, i int4, q int8, N numeric,
// T timestamp as text) and the names.
func cols(types string, names ...string) []col {
	if len(types) != len(names) {
		panic("admin: column types and names differ in number")
	}
	out := make([]col, len(names))
	for i, n := range names {
		var oid uint32
		switch types[i] {
		case 's', 'T':
			oid = oidText
		case 'i':
			oid = oidInt4
		case 'q':
			oid = oidInt8
		case 'N':
			oid = oidNumeric
		default:
			panic("admin: unknown column type")
		}
		out[i] = col{n, oid}
	}
	return out
}

// appendRowDescription appends a RowDescription of cs, every column in text format.
func appendRowDescription(dst []byte, cs []col) []byte {
	dst, h := pgwire.BeginFrame(dst, 'T')
	dst = append(dst, byte(len(cs)>>8), byte(len(cs)))
	for _, c := range cs {
		dst = append(append(dst, c.name...), 0)
		dst = append(dst, 0, 0, 0, 0, 0, 0) // table oid, column number
		dst = append(dst, byte(c.oid>>24), byte(c.oid>>16), byte(c.oid>>8), byte(c.oid))
		size := -1
		switch c.oid {
		case oidInt4:
			size = 4
		case oidInt8:
			size = 8
		}
		dst = append(dst, byte(size>>8), byte(size))
		dst = append(dst, 0xff, 0xff, 0xff, 0xff, 0, 0) // typmod -1, text format
	}
	return pgwire.FinishFrame(dst, h)
}

// null is a NULL value in a row.
type null struct{}

// appendDataRow appends a DataRow of vals: strings, integers, floats, bools (as 0/1),
// times (UTC, "" when zero: NULL) and null.
func appendDataRow(dst []byte, vals ...any) []byte {
	dst, h := pgwire.BeginFrame(dst, 'D')
	dst = append(dst, byte(len(vals)>>8), byte(len(vals)))
	for _, v := range vals {
		s, ok := text(v)
		if !ok {
			dst = append(dst, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		n := len(s)
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, s...)
	}
	return pgwire.FinishFrame(dst, h)
}

// appendCommandComplete appends CommandComplete with tag.
func appendCommandComplete(dst []byte, tag string) []byte {
	return pgwire.AppendFrame(dst, 'C', append([]byte(tag), 0))
}

// appendNotice appends a NoticeResponse (severity NOTICE, SQLSTATE 00000) with msg.
func appendNotice(dst []byte, msg string) []byte {
	dst, h := pgwire.BeginFrame(dst, 'N')
	for _, f := range [][2]string{{"S", "NOTICE"}, {"V", "NOTICE"}, {"C", "00000"}, {"M", msg}} {
		dst = append(dst, f[0][0])
		dst = append(append(dst, f[1]...), 0)
	}
	dst = append(dst, 0)
	return pgwire.FinishFrame(dst, h)
}

// result writes one SHOW answer: the row description, then rows, then "SHOW".
func (s *consoleSession) result(cs []col, rows [][]any) { s.rows(cs, rows, "SHOW") }

// rows writes a result set, ending with tag (PostgreSQL's CommandComplete).
func (s *consoleSession) rows(cs []col, rows [][]any, tag string) {
	for _, r := range rows {
		if len(r) != len(cs) {
			panic("admin: a row's width differs from its columns'")
		}
	}
	if s.my != nil {
		s.buf = s.my.appendResult(s.buf, cs, rows)
		return
	}
	s.buf = appendRowDescription(s.buf, cs)
	for _, r := range rows {
		s.buf = appendDataRow(s.buf, r...)
	}
	s.buf = appendCommandComplete(s.buf, tag)
}

// complete ends a command that has no rows.
func (s *consoleSession) complete(tag string) {
	if s.my != nil {
		s.buf = s.my.appendOK(s.buf)
		return
	}
	s.buf = appendCommandComplete(s.buf, tag)
}

// notice answers with a message: a NOTICE over PostgreSQL, a one-column result over MySQL.
func (s *consoleSession) notice(msg string) {
	if s.my != nil {
		s.buf = s.my.appendResult(s.buf, cols("s", "help"), [][]any{{msg}})
		return
	}
	s.buf = appendNotice(s.buf, msg)
	s.buf = appendCommandComplete(s.buf, "SHOW")
}

// empty answers an empty query.
func (s *consoleSession) empty() {
	if s.my != nil {
		s.buf = s.my.appendOK(s.buf)
		return
	}
	s.buf = append(s.buf, 'I', 0, 0, 0, 4) // EmptyQueryResponse
}

// text is v as a result's text value; ok is false for NULL.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		if x {
			return "1", true
		}
		return "0", true
	case time.Time:
		if x.IsZero() {
			return "", false
		}
		return x.UTC().Format("2006-01-02 15:04:05 UTC"), true
	case null, nil:
		return "", false
	}
	panic("admin: unknown value type")
}
