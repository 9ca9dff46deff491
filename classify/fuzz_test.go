package classify

import (
	"slices"
	"testing"
)

// FuzzClassify feeds Classify arbitrary text: it must never panic, its lists must be sorted
// sets, and what it calls cacheable must be a single plain read. The corpus is the statement
// table plus testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	for _, tc := range statementCases {
		f.Add(tc.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		s := Classify(sql)
		for name, list := range map[string][]string{"Reads": s.Reads, "Writes": s.Writes, "Functions": s.Functions} {
			if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
				t.Errorf("%s = %q: not sorted and deduplicated", name, list)
			}
			if slices.Contains(list, "") {
				t.Errorf("%s = %q holds an empty name", name, list)
			}
		}
		if s.ParseError && (s.Kind != KindWrite || !s.AllTables || s.Statements < 1) {
			t.Errorf("a parse error must be a write to everything: %+v", s)
		}
		if s.Kind > KindWrite {
			t.Errorf("Kind = %d, out of range", s.Kind)
		}
		if ok, why := s.Cacheable(BuiltinVolatility); ok {
			if why != "" || s.Kind != KindRead || s.Statements != 1 || s.Locking || len(s.Writes) > 0 || s.AllTables {
				t.Errorf("Cacheable = true, %q for %+v", why, s)
			}
		}
	})
}
