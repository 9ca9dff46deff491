package pool

import (
	"reflect"
	"testing"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestRelatedGroupsJoinPairsTransitively(t *testing.T) {
	got := GroupRelated([][2]string{
		{"v", "t"}, {"v2", "v"}, // a view over a view over t
		{"parted", "p1"}, {"parted", "p2"}, // partitions
		{"parent", "child"}, {"child", "grandchild"}, // cascades
		{"audited", "*"}, {"audited", "*"}, {"ruled", "*"}, // a trigger twice, a rule
	})
	want := link.Related{
		Groups: [][]string{
			{"child", "grandchild", "parent"},
			{"p1", "p2", "parted"},
			{"t", "v", "v2"},
		},
		AnyTable: []string{"audited", "ruled"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GroupRelated = %+v, want %+v", got, want)
	}
	if got := GroupRelated(nil); len(got.Groups) != 0 || len(got.AnyTable) != 0 {
		t.Errorf("no pairs: %+v", got)
	}
}
