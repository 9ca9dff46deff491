package classify

import (
	"reflect"
	"strings"
	"testing"
)

func TestShapeKey(t *testing.T) {
	for _, tt := range []struct {
		a, b  string
		lits  ShapeLiterals
		same  bool
		keyed bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 4711;", "SELECT abalance FROM pgbench_accounts WHERE aid = 12;", Numbers, true, true},
		{"select v from t where id = 1.5", "select v from t where id = 2", Numbers, true, true},
		{"select v from t where s = 'a'", "select v from t where s = 'b'", Numbers, false, true},
		{"select v from t where s = 'a'", "select v from t where s = 'b'", Constants, true, true},
		{"select 'now'::date", "select '2024-01-01'::date", Numbers, false, true},
		{"select v from t1 where id = 1", "select v from t2 where id = 1", Numbers, false, true},
		{"select $1, 5 from t", "select $2, 5 from t", Numbers, false, true},
		// A number glued to a word: PostgreSQL reads `1into` as 1 INTO. Kept whole.
		{"select 1into t from x", "select 1as t from x", Numbers, false, true},
		{"select 1e5 from t", "select 2e5 from t", Numbers, false, true},
		{"select /* 1 */ 2", "select /* 1 */ 3", Numbers, true, true},
		{"explain (analyze 0) delete from t", "explain (analyze 1) delete from t", Numbers, false, false},
		{"select E'\\'' , 1", "select E'\\'' , 2", Numbers, false, false},
		{"set x = 1", "set x = 2", Numbers, false, false},
	} {
		ka, oka := ShapeKey(tt.a, tt.lits)
		kb, okb := ShapeKey(tt.b, tt.lits)
		if oka != tt.keyed || okb != tt.keyed {
			t.Errorf("%q, %q: keyed %v, %v; want %v", tt.a, tt.b, oka, okb, tt.keyed)
			continue
		}
		if tt.keyed && (ka == kb) != tt.same {
			t.Errorf("%q and %q: keys %q and %q; want the same: %v", tt.a, tt.b, ka, kb, tt.same)
		}
	}
	if k, _ := ShapeKey("select v from t", Numbers); k != "select v from t" {
		t.Errorf("a text with no literal is its own key, got %q", k)
	}
}

// FuzzShapeKey: two texts with one key classify alike. Each plain number of the input is
// replaced by another, and the classifications of both texts are compared whenever the keys
// match (which they must, as only numbers changed).
func FuzzShapeKey(f *testing.F) {
	for _, s := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 4711",
		"select 1into t from x",
		"with w as (delete from t where id = 3 returning *) select * from w limit 10",
		"select nextval(5), setval('s', 10)",
		"insert into t values (1, 'a', 2.5)",
		"select * from t for update skip locked limit 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		key, ok := ShapeKey(sql, Numbers)
		if !ok {
			return
		}
		other := renumber(sql)
		key2, ok2 := ShapeKey(other, Numbers)
		if !ok2 || key2 != key {
			t.Fatalf("%q and %q differ in numbers only but have keys %q and %q (%v)", sql, other, key, key2, ok2)
		}
		if a, b := Classify(sql), Classify(other); !reflect.DeepEqual(a, b) {
			t.Fatalf("%q and %q share a key but classify as\n%+v\n%+v", sql, other, a, b)
		}
	})
}

// renumber replaces each plain number literal of sql by 7 (or 8 when it was 7).
func renumber(sql string) string {
	var b strings.Builder
	l := lexer{src: sql}
	copied := 0
	for {
		tok, ok := l.next()
		if !ok {
			break
		}
		if tok.kind != tokLiteral || tok.text[0] < '0' || tok.text[0] > '9' || !plainNumber(tok.text) {
			continue
		}
		start := l.pos - len(tok.text)
		b.WriteString(sql[copied:start])
		if tok.text == "7" {
			b.WriteString("8")
		} else {
			b.WriteString("7")
		}
		copied = l.pos
	}
	b.WriteString(sql[copied:])
	return b.String()
}
