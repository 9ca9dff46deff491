package d1

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// paramSlots maps each SQLite parameter of a statement (1-based position) to the PostgreSQL
// parameter ($N, 1-based) that feeds it. SQLite reads "$1" as a parameter named "$1" and numbers
// parameters in order of first appearance, so "$2 ... $1" binds by name, not by position. A bare
// "?" or ":name" takes the next position, as in D1.
func paramSlots(s *stmt) (slots []int, count int) {
	n := s.paramCount()
	slots = make([]int, n+1)
	for i := 1; i <= n; i++ {
		slots[i] = i
		name := s.paramName(i)
		if len(name) > 1 && (name[0] == '$' || name[0] == '?') {
			if k, err := strconv.Atoi(name[1:]); err == nil && k > 0 {
				slots[i] = k
			}
		}
		count = max(count, slots[i])
	}
	return slots, count
}

// bindParam binds one parameter value, decoded by the type the statement declared for it.
func bindParam(s *stmt, i int, oid uint32, binaryFormat bool, v []byte) error {
	if v == nil {
		return s.bindNull(i)
	}
	if binaryFormat {
		return bindBinary(s, i, oid, v)
	}
	switch oid {
	case pgserver.OIDInt2, pgserver.OIDInt4, pgserver.OIDInt8:
		if n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil {
			return s.bindInt64(i, n)
		}
	case pgserver.OIDFloat4, pgserver.OIDFloat8:
		if f, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64); err == nil {
			return s.bindDouble(i, f)
		}
	case pgserver.OIDBool:
		if b, ok := parseBool(v); ok {
			return s.bindInt64(i, int64(b2i(b)))
		}
	case pgserver.OIDBytea:
		if b, ok := hexBytea(v); ok {
			return s.bindBlob(i, b)
		}
		return s.bindBlob(i, v)
	}
	// Text, unknown, and anything that didn't parse: text, which SQLite's column affinity
	// converts on INSERT as it would for D1.
	return s.bindText(i, v)
}

// bindBinary decodes a binary-format parameter.
func bindBinary(s *stmt, i int, oid uint32, v []byte) error {
	bad := func() error {
		return pgserver.Errorf(codeBinaryRepresent, "incorrect binary data format in bind parameter %d", i)
	}
	switch oid {
	case pgserver.OIDInt2:
		if len(v) != 2 {
			return bad()
		}
		return s.bindInt64(i, int64(int16(binary.BigEndian.Uint16(v))))
	case pgserver.OIDInt4:
		if len(v) != 4 {
			return bad()
		}
		return s.bindInt64(i, int64(int32(binary.BigEndian.Uint32(v))))
	case pgserver.OIDInt8:
		if len(v) != 8 {
			return bad()
		}
		return s.bindInt64(i, int64(binary.BigEndian.Uint64(v)))
	case pgserver.OIDFloat4:
		if len(v) != 4 {
			return bad()
		}
		return s.bindDouble(i, float64(math.Float32frombits(binary.BigEndian.Uint32(v))))
	case pgserver.OIDFloat8:
		if len(v) != 8 {
			return bad()
		}
		return s.bindDouble(i, math.Float64frombits(binary.BigEndian.Uint64(v)))
	case pgserver.OIDBool:
		if len(v) != 1 {
			return bad()
		}
		return s.bindInt64(i, int64(b2i(v[0] != 0)))
	case pgserver.OIDText, pgserver.OIDVarchar, pgserver.OIDBPChar, pgserver.OIDName, pgserver.OIDJSON, pgserver.OIDUnknownLit, pgserver.OIDUnknown:
		return s.bindText(i, v)
	case pgserver.OIDJSONB:
		if len(v) < 1 || v[0] != 1 {
			return bad()
		}
		return s.bindText(i, v[1:])
	case pgserver.OIDBytea:
		return s.bindBlob(i, v)
	case pgserver.OIDUUID:
		if len(v) != 16 {
			return bad()
		}
		var b [36]byte
		const hexdig = "0123456789abcdef"
		j := 0
		for k, c := range v {
			if k == 4 || k == 6 || k == 8 || k == 10 {
				b[j] = '-'
				j++
			}
			b[j], b[j+1] = hexdig[c>>4], hexdig[c&15]
			j += 2
		}
		return s.bindText(i, b[:])
	case pgserver.OIDTimestamptz, pgserver.OIDTimestamp:
		// Stored as text in SQLite's own date format, so its date functions read it.
		if len(v) != 8 {
			return bad()
		}
		t := pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(v))) * time.Microsecond).UTC()
		return s.bindText(i, []byte(t.Format("2006-01-02 15:04:05.999999")))
	case pgserver.OIDDate:
		if len(v) != 4 {
			return bad()
		}
		t := pgEpoch.AddDate(0, 0, int(int32(binary.BigEndian.Uint32(v))))
		return s.bindText(i, []byte(t.Format("2006-01-02")))
	}
	return pgserver.Errorf(codeFeatureNotSupported, "binary format for parameter type %d is not supported by d1; send it as text", oid)
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// inferParamTypes guesses the PostgreSQL type of each $N the client left unspecified from the
// columns it is compared with or stored into, the way PostgreSQL infers them, so that drivers
// which describe a statement before binding (pgx) encode a []byte as bytea and a bool as bool.
// What it can't tell stays pgserver.OIDUnknown: the client then sends its value as text, which SQLite's
// affinity handles. cols looks up a table's declared column types.
func inferParamTypes(sql string, count int, cols func(table string) map[string]string) []uint32 {
	oids := make([]uint32, count)
	if count == 0 {
		return oids
	}
	ts := tokens(sql)
	tables := map[string]string{} // alias or name -> table
	var order []string
	word := func(t token) string {
		if t.kind == tkQuoted {
			return strings.ToLower(sql[t.start+1 : t.end-1])
		}
		return strings.ToLower(t.text(sql))
	}
	isName := func(k int) bool { return k < len(ts) && (ts[k].kind == tkWord || ts[k].kind == tkQuoted) }
	punct := func(k int, p string) bool { return k < len(ts) && ts[k].kind == tkPunct && ts[k].text(sql) == p }
	// Tables: the name after FROM, JOIN, INTO, UPDATE (and after commas in a FROM list), and
	// their aliases.
	for k := 0; k < len(ts); k++ {
		if !(ts[k].is(sql, "FROM") || ts[k].is(sql, "JOIN") || ts[k].is(sql, "INTO") || ts[k].is(sql, "UPDATE")) {
			continue
		}
		for {
			k++
			if k < len(ts) && ts[k].is(sql, "OR") { // UPDATE OR REPLACE t
				k += 2
			}
			if !isName(k) {
				break
			}
			name := word(ts[k])
			if punct(k+1, ".") && isName(k+2) { // schema.table
				k += 2
				name = word(ts[k])
			}
			if _, ok := tables[name]; !ok {
				order = append(order, name)
			}
			tables[name] = name
			alias := k + 1
			if alias < len(ts) && ts[alias].is(sql, "AS") {
				alias++
			}
			if isName(alias) && !isKeyword(sql, ts[alias]) {
				tables[word(ts[alias])] = name
				k = alias
			}
			if !punct(k+1, ",") {
				break
			}
			k++
		}
	}
	schema := map[string]map[string]string{}
	columnType := func(qual, col string) uint32 {
		lookup := func(table string) (uint32, bool) {
			m, ok := schema[table]
			if !ok {
				m = cols(table)
				schema[table] = m
			}
			decl, ok := m[col]
			return oidForDecltype(decl), ok
		}
		if qual != "" {
			if t, ok := tables[qual]; ok {
				oid, _ := lookup(t)
				return oid
			}
			return pgserver.OIDUnknown
		}
		for _, t := range order {
			if oid, ok := lookup(t); ok {
				return oid
			}
		}
		return pgserver.OIDUnknown
	}
	param := func(k int) int {
		if k < 0 || k >= len(ts) || ts[k].kind != tkParam {
			return 0
		}
		name := ts[k].text(sql)
		if n, err := strconv.Atoi(name[1:]); err == nil && n > 0 && n <= count && (name[0] == '$' || name[0] == '?') {
			return n
		}
		return 0
	}
	set := func(n int, oid uint32) {
		if n > 0 && oids[n-1] == pgserver.OIDUnknown {
			oids[n-1] = oid
		}
	}
	// column reference ending at token k: "col" or "qual.col"
	colAt := func(k int) (qual, col string, ok bool) {
		if !isName(k) || isKeyword(sql, ts[k]) {
			return "", "", false
		}
		if punct(k-1, ".") && isName(k-2) {
			return word(ts[k-2]), word(ts[k]), true
		}
		return "", word(ts[k]), true
	}
	// column reference starting at token k
	colFrom := func(k int) (qual, col string, ok bool) {
		if punct(k+1, ".") && isName(k+2) {
			return colAt(k + 2)
		}
		if punct(k+1, ".") || punct(k+1, "(") {
			return "", "", false
		}
		return colAt(k)
	}
	comparison := map[string]bool{"=": true, "==": true, "!=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true}
	for k := 0; k < len(ts); k++ {
		t := ts[k]
		switch {
		case t.kind == tkPunct && comparison[t.text(sql)]:
			if n := param(k + 1); n > 0 {
				if q, c, ok := colAt(k - 1); ok {
					set(n, columnType(q, c))
				}
			}
			if n := param(k - 1); n > 0 {
				if q, c, ok := colFrom(k + 1); ok {
					set(n, columnType(q, c))
				}
			}
		case t.is(sql, "LIKE") || t.is(sql, "GLOB"):
			set(param(k+1), pgserver.OIDText)
		case t.is(sql, "LIMIT") || t.is(sql, "OFFSET"):
			set(param(k+1), pgserver.OIDInt8)
			if punct(k+2, ",") {
				set(param(k+3), pgserver.OIDInt8)
			}
		case t.is(sql, "IN") && punct(k+1, "("):
			if q, c, ok := colAt(k - 1); ok {
				oid := columnType(q, c)
				for j := k + 2; j < len(ts) && !punct(j, ")"); j++ {
					set(param(j), oid)
				}
			}
		case t.is(sql, "BETWEEN"):
			if q, c, ok := colAt(k - 1); ok {
				oid := columnType(q, c)
				set(param(k+1), oid)
				set(param(k+3), oid)
			}
		case t.is(sql, "CAST") && punct(k+1, "(") && param(k+2) > 0 && k+4 < len(ts) && ts[k+3].is(sql, "AS"):
			set(param(k+2), oidForDecltype(ts[k+4].text(sql)))
		case t.is(sql, "INTO"):
			inferInsert(sql, ts, k, tables, cols, param, set, word, isName, punct)
		}
	}
	return oids
}

// inferInsert types the parameters of INSERT INTO t [(cols)] VALUES (...), (...) that stand
// alone in a VALUES position by the column they go into.
func inferInsert(sql string, ts []token, k int, tables map[string]string, cols func(string) map[string]string,
	param func(int) int, set func(int, uint32), word func(token) string, isName func(int) bool, punct func(int, string) bool) {
	k++
	if !isName(k) {
		return
	}
	table := word(ts[k])
	if punct(k+1, ".") && isName(k+2) {
		k += 2
		table = word(ts[k])
	}
	k++
	if k < len(ts) && ts[k].is(sql, "AS") {
		k += 2
	}
	types := cols(table)
	var names []string
	if punct(k, "(") {
		for k++; k < len(ts) && !punct(k, ")"); k++ {
			if isName(k) {
				names = append(names, word(ts[k]))
			}
		}
		k++
	} else {
		names = orderedColumns(types)
	}
	if k >= len(ts) || !ts[k].is(sql, "VALUES") {
		return
	}
	for k++; k < len(ts) && punct(k, "("); {
		pos, depth, single := 0, 0, true
		start := k + 1
		for k++; k < len(ts); k++ {
			switch {
			case punct(k, "("):
				depth++
			case punct(k, ")") && depth > 0:
				depth--
			case (punct(k, ",") || punct(k, ")")) && depth == 0:
				if single && k == start+1 && pos < len(names) {
					set(param(start), oidForDecltype(types[names[pos]]))
				}
				if punct(k, ")") {
					k++
					goto next
				}
				pos++
				start = k + 1
				single = true
			}
		}
	next:
		if !punct(k, ",") {
			return
		}
		k++
	}
}

// orderedColumns returns the table's column names in declaration order, which cols encodes in
// the "\x00order" entry.
func orderedColumns(types map[string]string) []string {
	if o, ok := types["\x00order"]; ok && o != "" {
		return strings.Split(o, "\x00")
	}
	return nil
}

// isKeyword reports whether a bare word can't be a column or alias in the positions the
// inference looks at.
func isKeyword(sql string, t token) bool {
	if t.kind != tkWord {
		return false
	}
	switch strings.ToUpper(t.text(sql)) {
	case "WHERE", "ON", "USING", "SET", "AND", "OR", "NOT", "IS", "NULL", "LIMIT", "OFFSET", "ORDER", "GROUP",
		"HAVING", "JOIN", "LEFT", "RIGHT", "INNER", "OUTER", "CROSS", "NATURAL", "FULL", "VALUES", "SELECT",
		"DEFAULT", "RETURNING", "UNION", "EXCEPT", "INTERSECT", "WINDOW", "AS", "BY", "CASE", "WHEN", "THEN",
		"ELSE", "END", "EXISTS", "IN", "LIKE", "GLOB", "BETWEEN", "INDEXED", "FROM", "DO", "CONFLICT":
		return true
	}
	return false
}
