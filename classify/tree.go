package classify

import (
	"encoding/json"
	"errors"
	"sync"
)

// tree is the parse tree libpg_query writes as JSON, read into one flat slice of values.
//
// Classify reads the JSON form rather than pg_query.Parse's protobuf form because the latter is
// the slow one by far: libpg_query packs it with protobuf-c, which visits all 268 fields of the
// Node oneof for every node, packs each sub-message before it knows its length and then moves
// it over to make room for the length prefix, at every level of nesting; Go then unmarshals the
// bytes into generated structs. BenchmarkParse in bench_test.go measures both: the JSON
// text costs 6 to 8 times less (4 µs against 26 µs for pgbench's point select, 51 µs against
// 410 µs for a ten-join ORM query). encoding/json is no way to read it (it allocates a map per
// node: 245 µs for the ten-join tree); this reader allocates nothing once its slices have
// grown, because trees are pooled.
//
// libpg_query's JSON is PostgreSQL's node tree: a field typed as Node is an object with one
// member named after the node type ({"RangeVar": {...}}); a field typed as one specific struct
// (InsertStmt.relation, SelectStmt.larg) is that struct's object without the wrapper. Fields
// with their zero value are left out.
type tree struct {
	src   string
	pos   int
	vals  []value
	kids  []int32 // the members of each object and the items of each array, contiguous per value
	stack []int32 // members of the objects and arrays being read, before they move to kids
}

// value is one JSON value in a tree.
type value struct {
	key   string // the member's name when the value sits in an object
	text  string // a string's text, unescaped; a number's or true/false/null's spelling
	kind  byte   // '{' object, '[' array, '"' string, '0' anything else
	first int32  // index in kids of the first member or item
	n     int32  // how many members or items
}

var trees = sync.Pool{New: func() any { return new(tree) }}

var errJSON = errors.New("classify: malformed JSON from libpg_query")

// parse reads src into t, reusing t's slices. The root is vals[0].
func (t *tree) parse(src string) error {
	t.src, t.pos = src, 0
	t.vals, t.kids, t.stack = t.vals[:0], t.kids[:0], t.stack[:0]
	if _, err := t.value(""); err != nil {
		return err
	}
	return nil
}

// release drops the references to the parsed text and puts t back in the pool.
func (t *tree) release() {
	t.src = ""
	clear(t.vals) // the strings point into src
	trees.Put(t)
}

func (t *tree) skipSpace() {
	for t.pos < len(t.src) {
		switch t.src[t.pos] {
		case ' ', '\t', '\n', '\r':
			t.pos++
		default:
			return
		}
	}
}

// value reads the value at pos and returns its index.
func (t *tree) value(key string) (int32, error) {
	t.skipSpace()
	if t.pos >= len(t.src) {
		return 0, errJSON
	}
	i := int32(len(t.vals))
	t.vals = append(t.vals, value{key: key})
	switch c := t.src[t.pos]; c {
	case '{', '[':
		t.pos++
		mark := len(t.stack)
		for first := true; ; first = false {
			t.skipSpace()
			if t.pos >= len(t.src) {
				return 0, errJSON
			}
			if end := t.src[t.pos]; end == '}' || end == ']' {
				t.pos++
				break
			}
			if !first {
				if t.src[t.pos] != ',' {
					return 0, errJSON
				}
				t.pos++
				t.skipSpace()
			}
			var k string
			if c == '{' {
				var err error
				if k, err = t.string(); err != nil {
					return 0, err
				}
				t.skipSpace()
				if t.pos >= len(t.src) || t.src[t.pos] != ':' {
					return 0, errJSON
				}
				t.pos++
			}
			child, err := t.value(k)
			if err != nil {
				return 0, err
			}
			t.stack = append(t.stack, child)
		}
		t.vals[i].kind = c
		t.vals[i].first = int32(len(t.kids))
		t.vals[i].n = int32(len(t.stack) - mark)
		t.kids = append(t.kids, t.stack[mark:]...)
		t.stack = t.stack[:mark]
	case '"':
		s, err := t.string()
		if err != nil {
			return 0, err
		}
		t.vals[i].kind, t.vals[i].text = '"', s
	default:
		start := t.pos
		for t.pos < len(t.src) && !endsLiteral(t.src[t.pos]) {
			t.pos++
		}
		if t.pos == start {
			return 0, errJSON
		}
		t.vals[i].kind, t.vals[i].text = '0', t.src[start:t.pos]
	}
	return i, nil
}

func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// string reads the string at pos. Without escapes it is a substring of src; the rare string
// with escapes (quotes or backslashes in an identifier or literal) is decoded by encoding/json.
func (t *tree) string() (string, error) {
	if t.pos >= len(t.src) || t.src[t.pos] != '"' {
		return "", errJSON
	}
	start := t.pos
	escaped := false
	for t.pos++; t.pos < len(t.src); t.pos++ {
		switch t.src[t.pos] {
		case '\\':
			escaped = true
			t.pos++
		case '"':
			t.pos++
			if !escaped {
				return t.src[start+1 : t.pos-1], nil
			}
			var s string
			if err := json.Unmarshal([]byte(t.src[start:t.pos]), &s); err != nil {
				return "", errJSON
			}
			return s, nil
		}
	}
	return "", errJSON
}

// items returns the members of an object or the items of an array.
func (t *tree) items(v int32) []int32 {
	val := &t.vals[v]
	return t.kids[val.first : val.first+val.n]
}

// member returns the index of obj's member named key, or -1.
func (t *tree) member(obj int32, key string) int32 {
	if obj < 0 || t.vals[obj].kind != '{' {
		return -1
	}
	for _, m := range t.items(obj) {
		if t.vals[m].key == key {
			return m
		}
	}
	return -1
}

// text returns the text of obj's member named key, or "".
func (t *tree) text(obj int32, key string) string {
	if m := t.member(obj, key); m >= 0 {
		return t.vals[m].text
	}
	return ""
}

// node returns the type name and the body of a Node, an object of one member named after a
// node type ({"RangeVar": {...}}). For any other value it returns "", -1.
func (t *tree) node(v int32) (typ string, body int32) {
	if v < 0 || t.vals[v].kind != '{' || t.vals[v].n != 1 {
		return "", -1
	}
	m := t.kids[t.vals[v].first]
	k := t.vals[m].key
	if k == "" || k[0] < 'A' || k[0] > 'Z' || t.vals[m].kind != '{' {
		return "", -1
	}
	return k, m
}

// stringNode returns the text of a String node ({"String": {"sval": "users"}}), and whether v is one.
func (t *tree) stringNode(v int32) (string, bool) {
	typ, body := t.node(v)
	if typ != "String" {
		return "", false
	}
	return t.text(body, "sval"), true
}
