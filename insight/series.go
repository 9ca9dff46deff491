package insight

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
)

// seriesLen is how many seconds the live series keeps.
const seriesLen = 120

// second is one second of all databases' units.
type second struct {
	unix     int64
	units    uint64
	rows     int64
	errors   uint64
	statuses map[cache.Status]uint64
	hist     histogram
}

// second returns the ring's slot for t's second, emptied when it held an older one. r.mu is held.
func (r *Recorder) second(t time.Time) *second {
	u := t.Unix()
	s := &r.ring[u%seriesLen]
	if s.unix != u {
		statuses := s.statuses
		clear(statuses)
		*s = second{unix: u, statuses: statuses}
		if s.statuses == nil {
			s.statuses = make(map[cache.Status]uint64)
		}
	}
	return s
}

func (s *second) add(u Unit) {
	s.units++
	s.rows += u.Rows
	if u.Failed {
		s.errors++
	}
	if u.Status != "" {
		s.statuses[u.Status]++
	}
	s.hist.add(u.Duration)
}

// Point is one second of the live series.
type Point struct {
	Time   int64   `json:"t"` // Unix seconds
	Units  uint64  `json:"units"`
	Rows   int64   `json:"rows"`
	Errors uint64  `json:"errors"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	// Hits and Cacheable: units answered from the cache, and units the cache could have
	// answered (hits and misses); their ratio is the hit ratio of cacheable reads.
	Hits      uint64                  `json:"hits"`
	Cacheable uint64                  `json:"cacheable"`
	Statuses  map[cache.Status]uint64 `json:"statuses"`
}

// Series returns the last n complete seconds before now, the oldest first, with zero points
// for seconds without units.
func (r *Recorder) Series(now time.Time, n int) []Point {
	n = min(max(n, 1), seriesLen-1)
	end := now.Unix() // the second in progress is left out
	out := make([]Point, 0, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	for u := end - int64(n); u < end; u++ {
		p := Point{Time: u, Statuses: map[cache.Status]uint64{}}
		if s := &r.ring[u%seriesLen]; s.unix == u {
			hits := s.statuses[cache.Hit] + s.statuses[cache.Stale]
			p.Units, p.Rows, p.Errors = s.units, s.rows, s.errors
			p.P50Ms, p.P99Ms = ms(s.hist.quantile(.5)), ms(s.hist.quantile(.99))
			p.Hits, p.Cacheable = hits, hits+s.statuses[cache.Miss]
			for k, v := range s.statuses {
				p.Statuses[k] = v
			}
		}
		out = append(out, p)
	}
	return out
}

// Window sums the last n complete seconds: units per second, p50 and p99 over them.
func (r *Recorder) Window(now time.Time, n int) (perSecond float64, p50, p99 time.Duration) {
	n = min(max(n, 1), seriesLen-1)
	end := now.Unix()
	var h histogram
	var units uint64
	r.mu.Lock()
	for u := end - int64(n); u < end; u++ {
		if s := &r.ring[u%seriesLen]; s.unix == u {
			units += s.units
			h.merge(&s.hist)
		}
	}
	r.mu.Unlock()
	return float64(units) / float64(n), h.quantile(.5), h.quantile(.99)
}
