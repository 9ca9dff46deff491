package pgdiff

import (
	"fmt"
	"strings"
)

// Compare returns nil when got is want, line for line, or an error showing the first line
// where they differ, with the lines before it for context.
func Compare(want, got Transcript) error {
	n := min(len(want), len(got))
	i := 0
	for i < n && want[i] == got[i] {
		i++
	}
	if i == len(want) && i == len(got) {
		return nil
	}
	var b strings.Builder
	from := max(0, i-8)
	for _, l := range want[from:i] {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	line := func(t Transcript) string {
		if i < len(t) {
			return t[i]
		}
		return "(nothing more)"
	}
	fmt.Fprintf(&b, "  - %s   (PostgreSQL)\n  + %s   (Slipstream)\n", line(want), line(got))
	return fmt.Errorf("transcripts differ at line %d:\n%s", i+1, b.String())
}

// String is the whole transcript, one line each.
func (t Transcript) String() string { return strings.Join(t, "\n") }
