package classify

import "strings"

// sequenceFunctions are the built-ins that advance or set a sequence named by their first
// argument: a cached read of the sequence (SELECT last_value FROM s) is stale after a call.
var sequenceFunctions = map[string]bool{"nextval": true, "setval": true}

// sequenceCall records the sequence a nextval or setval call fc changes, when name (as funcCall
// records it) is one of them: the first argument's text when it is a literal, as in
// nextval('s') or nextval('s'::regclass), else "*" (a parameter or an expression: any sequence).
func (w *walker) sequenceCall(fc int32, name string) {
	if !SequenceFunction(name) {
		return
	}
	args := w.t.member(fc, "args")
	if args < 0 || w.t.vals[args].kind != '[' || len(w.t.items(args)) == 0 {
		return
	}
	seq := "*"
	if s, ok := w.literalArg(w.t.items(args)[0]); ok {
		seq = regclassName(s)
	}
	w.seqs = append(w.seqs, seq)
}

// literalArg returns the string of a constant argument, looking through casts ('s'::regclass).
func (w *walker) literalArg(v int32) (string, bool) {
	for range 4 {
		typ, body := w.t.node(v)
		switch typ {
		case "TypeCast":
			v = w.t.member(body, "arg")
			continue
		case "A_Const":
			if sv := w.t.member(body, "sval"); sv >= 0 {
				return strings.Clone(w.t.text(sv, "sval")), true
			}
		}
		return "", false
	}
	return "", false
}

// regclassName reads a relation name as regclass input does: parts separated by dots, each
// lower-cased unless double-quoted.
func regclassName(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && quoted && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SequenceFunction reports whether name (as Statement.Functions has it) is nextval or setval,
// whose first argument names the sequence they change.
func SequenceFunction(name string) bool {
	return sequenceFunctions[strings.TrimPrefix(name, "pg_catalog.")]
}
