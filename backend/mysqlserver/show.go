package mysqlserver

import (
	"sort"
	"strings"
)

// show answers SHOW WARNINGS, SHOW ERRORS, SHOW [SESSION] VARIABLES [LIKE 'p'] and SHOW
// DATABASES; any other SHOW goes to the backend.
func (s *session) show(w *Results, ts []Token) (bool, error) {
	if len(ts) == 0 {
		return false, nil
	}
	switch {
	case len(ts) == 1 && (ts[0].Is("WARNINGS") || ts[0].Is("ERRORS")):
		// Statements here raise errors, never warnings, and an error is reported when it happens.
		return true, w.Columns([]Column{{Name: "Level", Type: TypeVarString}, {Name: "Code", Type: TypeLongLong}, {Name: "Message", Type: TypeVarString}})
	case len(ts) == 1 && (ts[0].Is("DATABASES") || ts[0].Is("SCHEMAS")):
		if err := w.Columns([]Column{{Name: "Database", Type: TypeVarString}}); err != nil {
			return true, err
		}
		w.BeginRow()
		w.Bytes([]byte(s.cfg.Database))
		return true, w.EndRow()
	}
	k := 0
	if ts[0].Is("SESSION") || ts[0].Is("LOCAL") || ts[0].Is("GLOBAL") {
		k++
	}
	if k >= len(ts) || !ts[k].Is("VARIABLES") {
		return false, nil
	}
	k++
	pattern := "%"
	if k+1 < len(ts) && ts[k].Is("LIKE") && ts[k+1].Kind == String {
		pattern = string(ts[k+1].Value)
		k += 2
	}
	if k != len(ts) {
		return true, errorf(erNotSupportedYet, "42000", "SHOW VARIABLES takes LIKE 'pattern' only")
	}
	names := []string{"autocommit"}
	for n := range s.vars.defaults {
		names = append(names, n)
	}
	for n := range s.vars.set {
		if _, def := s.vars.defaults[n]; !def && n[0] != '@' {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if err := w.Columns([]Column{{Name: "Variable_name", Type: TypeVarString}, {Name: "Value", Type: TypeVarString}}); err != nil {
		return true, err
	}
	for _, n := range names {
		if !like(n, strings.ToLower(pattern)) {
			continue
		}
		v, _ := s.vars.get(n)
		w.BeginRow()
		w.Bytes([]byte(n))
		w.Bytes([]byte(v))
		if err := w.EndRow(); err != nil {
			return true, err
		}
	}
	return true, nil
}

// like matches s against a LIKE pattern (% and _, backslash escapes), in time linear in their
// product.
func like(s, p string) bool {
	type pc struct {
		c   byte
		any bool // %
		one bool // _
	}
	var pat []pc
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '%':
			pat = append(pat, pc{any: true})
		case p[i] == '_':
			pat = append(pat, pc{one: true})
		case p[i] == '\\' && i+1 < len(p):
			i++
			pat = append(pat, pc{c: p[i]})
		default:
			pat = append(pat, pc{c: p[i]})
		}
	}
	// m[j]: s[:i] matches pat[:j].
	m := make([]bool, len(pat)+1)
	m[0] = true
	for j := 1; j <= len(pat) && pat[j-1].any; j++ {
		m[j] = true
	}
	for i := 0; i < len(s); i++ {
		next := make([]bool, len(pat)+1)
		for j := 1; j <= len(pat); j++ {
			q := pat[j-1]
			switch {
			case q.any:
				next[j] = next[j-1] || m[j]
			case q.one || q.c == s[i]:
				next[j] = m[j-1]
			}
		}
		m = next
	}
	return m[len(pat)]
}
