package classify

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// benchQueries are the hot path's two ends: pgbench's point select and an ORM's ten-join page.
var benchQueries = []struct{ name, sql string }{
	{"pgbench point select", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"},
	{"ORM ten joins", tenJoinQuery},
}

func BenchmarkClassify(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := Classify(q.sql)
				if ok, _ := s.Cacheable(BuiltinVolatility); !ok {
					b.Fatal("not cacheable")
				}
			}
		})
	}
}

// BenchmarkParse measures what pg_query itself costs, for comparison with BenchmarkClassify:
// the protobuf tree pg_query.Parse returns, the JSON text Classify reads instead (see tree.go),
// and the summary libpg_query computes in C, which lacks what Classify needs (locking clauses,
// SQL keyword functions, CTE scopes).
func BenchmarkParse(b *testing.B) {
	for _, q := range benchQueries {
		b.Run("protobuf/"+q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg_query.Parse(q.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("json/"+q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg_query.ParseToJSON(q.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("summary/"+q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg_query.Summary(q.sql, -1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The edge classifies every query it might answer from the cache: a point select must cost a
// handful of allocations (the parser's JSON text, the result's slices and names), not one per node.
func TestClassifyAllocatesLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop trees at random")
	}
	budgets := []struct {
		sql string
		max float64
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = $1", 5},
		{tenJoinQuery, 30},
	}
	Classify(tenJoinQuery) // grow a pooled tree
	for _, b := range budgets {
		if n := testing.AllocsPerRun(50, func() { Classify(b.sql) }); n > b.max {
			t.Errorf("Classify allocated %v times for %.40q..., budget %v", n, b.sql, b.max)
		}
	}
}
