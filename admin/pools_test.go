package admin

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/pool"
)

// TestEveryPoolHasItsRows: the console reads its pools at each command, so a pool added
// between two commands is listed by the second; an any_role database's roles' pools have a
// SHOW POOLS row each (database and user, as PgBouncer's) and fold into their database's one
// SHOW DATABASES and SHOW STATS row; /metrics has a series per pool.
func TestEveryPoolHasItsRows(t *testing.T) {
	app := RemotePool(pool.OriginInfo{Database: "app", User: "owner"})
	pools := []PoolEntry{{Name: "app", Database: "app", Protocol: "postgres", Pool: app}}
	c := New(Config{Pools: func() []PoolEntry { return pools }})
	for _, tc := range []struct {
		name                   string
		add                    []PoolEntry
		pools, databases, gets []string // database/user of SHOW POOLS; names of SHOW DATABASES and SHOW STATS
	}{
		{"the configured pool", nil, []string{"app/owner"}, []string{"app"}, []string{"app"}},
		{"two roles logged in", []PoolEntry{
			{Name: "app", Database: "app", Protocol: "postgres", User: "alice", Pool: app},
			{Name: "app", Database: "app", Protocol: "postgres", User: "bob", Pool: app}},
			[]string{"app/owner", "app/alice", "app/bob"}, []string{"app"}, []string{"app"}},
		{"a database created through the API", []PoolEntry{
			{Name: "made", Database: "made", Protocol: "postgres", Pool: RemotePool(pool.OriginInfo{User: "slipstream"})},
			{Name: "made#mysql", Database: "made", Protocol: "mysql", Pool: RemotePool(pool.OriginInfo{User: "slipstream"})}},
			[]string{"app/owner", "app/alice", "app/bob", "made/slipstream", "made#mysql/slipstream"},
			[]string{"app", "made", "made#mysql"}, []string{"app", "made", "made#mysql"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools = append(pools, tc.add...)
			var got []string
			for _, r := range c.pools() {
				got = append(got, r[0].(string)+"/"+r[1].(string))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.pools) {
				t.Errorf("SHOW POOLS %v, want %v", got, tc.pools)
			}
			for what, rows := range map[string][][]any{"SHOW DATABASES": c.databases(), "SHOW STATS": c.stats(statsAll)} {
				var names []string
				for _, r := range rows {
					names = append(names, r[0].(string))
				}
				if fmt.Sprint(names) != fmt.Sprint(tc.databases) {
					t.Errorf("%s %v, want %v", what, names, tc.databases)
				}
			}
			// Five series per pool: two connection states, two client states, the limit.
			reg := prometheus.NewRegistry()
			reg.MustRegister(c.Collector())
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range families {
				n += len(f.GetMetric())
			}
			if n != 5*len(tc.pools) {
				t.Errorf("%d series in /metrics, want %d", n, 5*len(tc.pools))
			}
		})
	}
}
