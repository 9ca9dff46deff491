package kv

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

func TestTheMatcherReadsWhatDriversAndORMsSend(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want string // the verb, columns, operands and parameter types, written down by describeStmt
	}{
		{"a get by parameter", `SELECT key, value, metadata, expiration FROM kv WHERE key = $1`,
			"get [key value metadata expiration] key=$1 params=[25]"},
		{"a get of every column", `select * from KV where KEY = 'a''b';`,
			"get [key value metadata expiration] key='a'b' params=[]"},
		{"quoted and qualified names", `SELECT "kv"."value", kv.key FROM public."kv" WHERE "key" = $1::text`,
			"get [value key] key=$1 params=[25]"},
		{"a listing with every clause", `SELECT key FROM kv WHERE key > $2 AND key LIKE $1 ORDER BY kv.key ASC LIMIT $3`,
			"get [key] like=$1 after=$2 limit=$3 params=[25 25 20]"},
		{"a listing with literals", `SELECT key /* c */ FROM kv -- c
			WHERE key LIKE 'p%' LIMIT 10`, "get [key] like='p%' limit=10 params=[]"},
		{"LIMIT ALL", `SELECT key FROM kv LIMIT ALL`, "get [key] params=[]"},
		{"a put of every column", `INSERT INTO kv (key, value, metadata, expiration) VALUES ($1, $2, $3, $4)`,
			"put [key value metadata expiration] rows=[[$1 $2 $3 $4]] params=[25 17 114 20]"},
		{"a put with a TTL and literals", `INSERT INTO kv (value, key, expiration_ttl) VALUES ('\x01', 'k', -5), ('v', 'k2', (60))`,
			"put [value key expiration_ttl] rows=[['\\x01' 'k' -5] ['v' 'k2' 60]] params=[]"},
		{"a put with casts", `INSERT INTO kv (key, value, metadata) VALUES ($1::varchar, $2::bytea, $3::jsonb)`,
			"put [key value metadata] rows=[[$1 $2 $3]] params=[25 17 114]"},
		{"a put of NULL metadata", `INSERT INTO kv (key, value, metadata) VALUES ('k', 'v', NULL)`,
			"put [key value metadata] rows=[['k' 'v' NULL]] params=[]"},
		{"a delete", `DELETE FROM kv WHERE key = $1`, "delete key=$1 params=[25]"},
		{"an empty statement", ` -- nothing `, "empty params=[]"},
		{"SET with TO", `SET search_path TO public, "$user"`, `set search_path="public, $user"`},
		{"SET TIME ZONE", `SET TIME ZONE 'UTC'`, `set timezone="UTC"`},
		{"SET a custom parameter to DEFAULT", `SET my.param = DEFAULT`, `set my.param default`},
		{"RESET ALL", `RESET ALL`, `reset ""`},
		{"set_config as the pool sends it", `SELECT pg_catalog.set_config('a','1',false),set_config('B','2',true)`, `set_config [[a 1] [b 2]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sts, err := parseSQL(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if len(sts) != 1 {
				t.Fatalf("%d statements", len(sts))
			}
			if got := describeStmt(sts[0]); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTheMatcherRefusesWhatItDoesNotSupport(t *testing.T) {
	for _, sql := range []string{
		`SELECT key FROM kv WHERE key = $1 AND key = $2`,
		`SELECT key FROM kv WHERE key < $1`,
		`SELECT key FROM kv WHERE key = $0`,
		`SELECT key FROM kv WHERE key = $99999`,
		`SELECT key, FROM kv`,
		`SELECT key FROM kv WHERE key = E'x'`,
		`SELECT key FROM kv OFFSET 1`,
		`SELECT key FROM kv LIMIT 1 junk`,
		`SELECT expiration_ttl FROM kv`,
		`INSERT INTO kv (key, value, key) VALUES (1, 2, 3)`,
		`INSERT INTO kv (key, value) VALUES ($1)`,
		`INSERT INTO kv (key, value) VALUES ($1, $2::int8)`,
		`INSERT INTO kv (key, value) SELECT key, value FROM kv`,
		`INSERT INTO kv VALUES ('a', 'b')`,
		`INSERT INTO kv (key, value) VALUES ('a', 'b') RETURNING key`,
		`DELETE FROM kv WHERE key LIKE 'a%'`,
		`SELECT set_config($1, 'x', false)`,
		`SHOW ALL`,
		`TRUNCATE kv`,
	} {
		if sts, err := parseSQL(sql); err == nil {
			t.Errorf("%s: matched as %s", sql, describeStmt(sts[0]))
		}
	}
}

func TestLikePatternsArePrefixes(t *testing.T) {
	tests := []struct {
		pat, prefix string
		exact, ok   bool
	}{
		{"user:%", "user:", false, true},
		{"%", "", false, true},
		{"a%%", "a", false, true},
		{`a\_b\%%`, "a_b%", false, true},
		{"abc", "abc", true, true},
		{`a\\`, `a\`, true, true},
		{"a_%", "", false, false},
		{"%a", "", false, false},
		{`a\`, "", false, false},
	}
	for _, tt := range tests {
		prefix, exact, err := likePrefix(tt.pat)
		if (err == nil) != tt.ok || tt.ok && (prefix != tt.prefix || exact != tt.exact) {
			t.Errorf("likePrefix(%q) = %q, %v, %v", tt.pat, prefix, exact, err)
		}
	}
}

func TestByteaInputReadsHexAndEscapeFormats(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{`\x00ff10`, []byte{0, 0xff, 0x10}, true},
		{`\x`, []byte{}, true},
		{`plain`, []byte("plain"), true},
		{`a\\b\000\377`, []byte{'a', '\\', 'b', 0, 0xff}, true},
		{`\x0`, nil, false},
		{`\xzz`, nil, false},
		{`\400`, nil, false},
		{`a\b`, nil, false},
	}
	for _, tt := range tests {
		got, err := byteaIn([]byte(tt.in))
		if (err == nil) != tt.ok || tt.ok && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("byteaIn(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestPrefixEndBoundsEveryKeyWithThePrefix(t *testing.T) {
	for _, tt := range []struct{ prefix, end string }{
		{"a", "b"}, {"a\xff", "b"}, {"ab\xff\xff", "ac"}, {"\xff", ""},
	} {
		end, ok := prefixEnd(tt.prefix)
		if end != tt.end || ok != (tt.end != "") {
			t.Errorf("prefixEnd(%q) = %q, %v", tt.prefix, end, ok)
		}
	}
}

// describeStmt writes a statement down for comparison.
func describeStmt(st *statement) string {
	op := func(o operand) string {
		switch o.kind {
		case opParam:
			return fmt.Sprintf("$%d", o.param)
		case opString:
			return "'" + o.text + "'"
		case opNull:
			return "NULL"
		}
		return o.text
	}
	cols := func() []string {
		var out []string
		for _, c := range st.cols {
			out = append(out, columnNames[c])
		}
		return out
	}
	s := ""
	switch st.verb {
	case vEmpty:
		s = "empty"
	case vGet:
		s = fmt.Sprint("get ", cols())
		for _, x := range []struct {
			name string
			o    operand
		}{{"key", st.key}, {"like", st.like}, {"after", st.after}, {"limit", st.limit}} {
			if x.o.kind != opNone {
				s += " " + x.name + "=" + op(x.o)
			}
		}
	case vPut:
		var rows [][]string
		for _, r := range st.rows {
			var row []string
			for _, o := range r {
				row = append(row, op(o))
			}
			rows = append(rows, row)
		}
		s = fmt.Sprint("put ", cols(), " rows=", rows)
	case vDelete:
		s = "delete key=" + op(st.key)
	case vSession:
		ss := st.session
		switch ss.Verb {
		case pgserver.SetSession:
			if ss.Default {
				return "set " + ss.Name + " default"
			}
			return fmt.Sprintf("set %s=%q", ss.Name, ss.Value)
		case pgserver.Reset:
			return fmt.Sprintf("reset %q", ss.Name)
		case pgserver.SetConfig:
			return fmt.Sprint("set_config ", ss.Pairs)
		}
		return fmt.Sprint("session ", ss.Verb)
	default:
		return fmt.Sprint("verb ", st.verb)
	}
	return s + fmt.Sprint(" params=", st.params)
}
