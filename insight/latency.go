package insight

import (
	"math"
	"time"
)

// latencyBuckets is the number of log-scaled buckets of a histogram: four per doubling from
// 1 µs, up to about 70 minutes.
const latencyBuckets = 4 * 32

// histogram counts latencies in log-scaled buckets (each about 19% wide), enough for p50 and
// p99 to be within that much of the truth with a fixed size.
type histogram struct {
	n      uint64
	counts [latencyBuckets]uint32
}

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	b := int(math.Log2(us) * 4)
	return min(b, latencyBuckets-1)
}

// upper is the upper bound of bucket b.
func upper(b int) time.Duration {
	return time.Duration(math.Exp2(float64(b+1)/4) * float64(time.Microsecond))
}

func (h *histogram) add(d time.Duration) {
	h.n++
	h.counts[bucketOf(d)]++
}

func (h *histogram) merge(o *histogram) {
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the upper bound of the bucket holding quantile q (0 < q <= 1); 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return upper(i)
		}
	}
	return upper(latencyBuckets - 1)
}
