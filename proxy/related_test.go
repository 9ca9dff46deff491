package proxy

import (
	"slices"
	"testing"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestAReadIsKeptUnderEveryTableWhoseWritesMayChangeIt(t *testing.T) {
	rel := link.Related{
		Groups:   [][]string{{"base", "v", "v2"}, {"child", "parent"}},
		AnyTable: []string{"audited"},
	}
	for _, c := range []struct {
		reads, want []string
	}{
		{[]string{"v"}, []string{"audited", "base", "v", "v2"}},
		{[]string{`public."v2"`}, []string{"audited", "base", `public."v2"`, "v", "v2"}},
		{[]string{"child", "other"}, []string{"audited", "child", "other", "parent"}},
		{[]string{"other"}, []string{"audited", "other"}},
	} {
		if got := withRelated(c.reads, rel); !slices.Equal(got, c.want) {
			t.Errorf("withRelated(%q) = %q, want %q", c.reads, got, c.want)
		}
	}
	// With no catalog (D1, KV) the reads are kept as they are.
	if got := withRelated([]string{"t"}, link.Related{}); !slices.Equal(got, []string{"t"}) {
		t.Errorf("no related relations: %q", got)
	}
}
