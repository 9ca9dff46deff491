package sessionstate

import (
	"slices"
	"sort"
	"strings"

	"github.com/slipstream-proxy/slipstream/classify"
)

// Settings are a PostgreSQL session's run-time parameters as it set them: its startup values
// (Base), the session-level SETs in force, and the changes staged until what made them
// succeeds (Stage, then Commit or Drop).
type Settings struct {
	// Base are startup parameters a replay applies with set_config (the pool side: those the
	// origin does not report already); nil at the edge, whose keys hold the startup parameters.
	Base map[string]string
	sets []classify.Setting // in the order made, one per parameter
	// staged are changes not yet known to have happened: kept by Commit, forgotten by Drop.
	staged []classify.Setting
}

// Apply changes the settings by one SET or RESET known to have happened. A RESET goes back to
// the startup value, which Base replays.
func (s *Settings) Apply(set classify.Setting) {
	if set.All {
		s.sets = s.sets[:0]
		return
	}
	s.sets = slices.DeleteFunc(s.sets, func(x classify.Setting) bool { return x.Name == set.Name })
	if !set.Reset {
		s.sets = append(s.sets, set)
	}
}

// Stage adds changes whose statements ran but whose batch or transaction has not yet ended.
func (s *Settings) Stage(sets ...classify.Setting) { s.staged = append(s.staged, sets...) }

// Staged reports whether changes wait for Commit or Drop.
func (s *Settings) Staged() bool { return len(s.staged) > 0 }

// Commit applies the staged changes, in order; resetAll reports that one of them was RESET ALL
// (or DISCARD ALL), which goes back to a connection's own startup values.
func (s *Settings) Commit() (resetAll bool) {
	for _, set := range s.staged {
		s.Apply(set)
		resetAll = resetAll || set.All
	}
	s.staged = s.staged[:0]
	return resetAll
}

// Drop forgets the staged changes: their transaction rolled back.
func (s *Settings) Drop() { s.staged = s.staged[:0] }

// Len is the number of SETs in force.
func (s *Settings) Len() int { return len(s.sets) }

// Sorted returns the SETs in force ordered by parameter name: the same settings made in any
// order give the same list (the edge's cache keys).
func (s *Settings) Sorted() []classify.Setting {
	out := slices.Clone(s.sets)
	slices.SortFunc(out, func(a, b classify.Setting) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Script returns the SETs in force as one query, by parameter name, "" when there are none:
// what a new pool side is told to serve the session (it follows them as the client's own).
func (s *Settings) Script() string {
	var b strings.Builder
	for _, set := range s.Sorted() {
		b.WriteString(set.Stmt)
		b.WriteString("\n;\n") // a statement may end in a -- comment
	}
	return b.String()
}

// ByName returns the SETs in force as parameter -> statement (a session handed over).
func (s *Settings) ByName() map[string]string {
	m := make(map[string]string, len(s.sets))
	for _, set := range s.sets {
		m[set.Name] = set.Stmt
	}
	return m
}

// Restore applies the SETs of a ByName map, by parameter name.
func (s *Settings) Restore(byName map[string]string) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s.Apply(classify.Setting{Name: n, Stmt: byName[n]})
	}
}

// Replay is the query that puts an origin connection into these settings, in the order they
// were made, after RESET ALL and the Base values; "" means the connection's own defaults. It
// names the state exactly: the pool side compares it with what a connection holds.
func (s *Settings) Replay() string {
	if len(s.Base) == 0 && len(s.sets) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("RESET ALL;")
	if len(s.Base) > 0 {
		names := make([]string, 0, len(s.Base))
		for k := range s.Base {
			names = append(names, k)
		}
		sort.Strings(names)
		b.WriteString("SELECT ")
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("pg_catalog.set_config(")
			quoteLiteral(&b, k)
			b.WriteByte(',')
			quoteLiteral(&b, s.Base[k])
			b.WriteString(",false)")
		}
		b.WriteByte(';')
	}
	for _, set := range s.sets {
		b.WriteString(set.Stmt)
		b.WriteString("\n;") // the statement may end in a -- comment
	}
	return b.String()
}

// quoteLiteral writes v as a standard-conforming SQL string literal.
func quoteLiteral(b *strings.Builder, v string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(v, "'", "''"))
	b.WriteByte('\'')
}
