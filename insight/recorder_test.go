package insight

import (
	"fmt"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
)

func TestQueriesDifferingOnlyInConstantsShareAShape(t *testing.T) {
	for _, tc := range []struct {
		protocol, a, b string
		same           bool
	}{
		{Postgres, "select * from t where id = 1", "SELECT * FROM t WHERE id = 42", true},
		{Postgres, "select * from t where id = $1", "select * from t where id = 7", true},
		{Postgres, "select * from t where id = 1", "select * from u where id = 1", false},
		{MySQL, "select * from t where id = 1", "SELECT * FROM t WHERE id = 42", true},
		{MySQL, "select * from t where id = 1", "select * from u where id = 1", false},
		{Postgres, "not sql at all", "not sql at all", true},
	} {
		t.Run(tc.protocol+" "+tc.a+" / "+tc.b, func(t *testing.T) {
			fa, _ := fingerprint(tc.protocol, tc.a)
			fb, _ := fingerprint(tc.protocol, tc.b)
			if (fa == fb) != tc.same {
				t.Errorf("fingerprints %s and %s: same = %v, want %v", fa, fb, fa == fb, tc.same)
			}
		})
	}
}

func TestTheShapeTableKeepsTheTopShapesByTimeWithinItsBound(t *testing.T) {
	r := New(Config{MaxShapes: 3})
	now := time.Now()
	for i := range 10 {
		r.Observe(Unit{DB: "app", Protocol: Postgres, Query: fmt.Sprintf("select * from t%d", i), Start: now,
			Duration: time.Duration(i+1) * time.Millisecond, Statements: 1, Rows: 1, Status: cache.Miss})
	}
	shapes := r.Shapes(0)
	if len(shapes) != 3 {
		t.Fatalf("%d shapes, want the bound, 3", len(shapes))
	}
	if shapes[0].Query != "select * from t9" {
		t.Errorf("top shape %q, want the slowest, t9", shapes[0].Query)
	}
	tot, _, _ := r.DBTotals(Postgres, "app")
	if tot.Queries != 10 || tot.Statuses[cache.Miss] != 10 {
		t.Errorf("totals %+v: evictions must not lose counts", tot)
	}
}

func TestPercentilesAndHitRatioOfAShape(t *testing.T) {
	r := New(Config{})
	now := time.Now()
	for i := range 100 {
		st := cache.Hit
		if i%4 == 0 {
			st = cache.Miss
		}
		r.Observe(Unit{DB: "app", Protocol: Postgres, Query: fmt.Sprintf("select %d", i), Start: now,
			Duration: time.Duration(i+1) * time.Millisecond, Statements: 1, Status: st})
	}
	s := r.Shapes(1)[0]
	if s.Calls != 100 || s.HitRatio != 0.75 || s.NotCached != "" {
		t.Errorf("shape %+v: want 100 calls, hit ratio 0.75, cacheable", s)
	}
	// Buckets are about 19% wide: the percentiles are within that of the truth.
	if s.P50Ms < 50 || s.P50Ms > 50*1.2 || s.P99Ms < 99 || s.P99Ms > 100*1.2 {
		t.Errorf("p50 %.1f ms, p99 %.1f ms: want about 50 and 99", s.P50Ms, s.P99Ms)
	}
	r.Observe(Unit{DB: "app", Protocol: Postgres, Query: "select now()", Start: now, Duration: time.Millisecond, Status: cache.Volatile})
	for _, sh := range r.Shapes(0) {
		if sh.Query == "select now()" && sh.NotCached != "volatile" {
			t.Errorf("not_cached %q, want volatile", sh.NotCached)
		}
	}
}

func TestTheSeriesCountsEachSecond(t *testing.T) {
	r := New(Config{})
	base := time.Unix(1_000_000, 0)
	for i := range 5 {
		r.Observe(Unit{DB: "app", Start: base.Add(time.Duration(i) * time.Second), Duration: time.Millisecond, Status: cache.Hit})
		r.Observe(Unit{DB: "app", Start: base.Add(time.Duration(i) * time.Second), Duration: time.Millisecond, Status: cache.Miss})
	}
	pts := r.Series(base.Add(5*time.Second), 5)
	for _, p := range pts {
		if p.Units != 2 || p.Hits != 1 || p.Cacheable != 2 {
			t.Errorf("second %d: %+v, want 2 units, 1 hit of 2 cacheable", p.Time, p)
		}
	}
	if ups, _, _ := r.Window(base.Add(5*time.Second), 5); ups != 2 {
		t.Errorf("%v units/s, want 2", ups)
	}
}
