package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is one latency series: its percentiles and how it compares with the direct path.
// Its JSON form is the one issue 4 specifies; fields after SpeedupVsDirect are extras.
type Result struct {
	Protocol string  `json:"protocol"` // Postgres or MySQL
	Pattern  string  `json:"pattern"`  // NewConnection or Persistent
	Mode     string  `json:"mode"`     // Direct, Uncached or Cached
	P50Ms    float64 `json:"p50_ms"`
	P95Ms    float64 `json:"p95_ms"`
	P99Ms    float64 `json:"p99_ms"`
	// WANRoundTrips is the median latency in round-trip times, p50 / RTT; nil (JSON null)
	// when the RTT is not known.
	WANRoundTrips *float64 `json:"wan_round_trips"`
	// SpeedupVsDirect is the direct p50 of the same protocol and pattern over this p50; 0
	// when there is no direct series to compare with.
	SpeedupVsDirect float64 `json:"speedup_vs_direct"`

	MeanMs  float64 `json:"mean_ms"`
	MinMs   float64 `json:"min_ms"`
	Queries int     `json:"queries"`
	RTTMs   float64 `json:"rtt_ms,omitempty"`
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

// summarize turns a series' latencies into a Result without the derived fields.
func summarize(protocol, pattern, mode string, d []time.Duration) Result {
	r := Result{Protocol: protocol, Pattern: pattern, Mode: mode, Queries: len(d)}
	if len(d) == 0 {
		return r
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	r.P50Ms, r.P95Ms, r.P99Ms = ms(percentile(d, 0.50)), ms(percentile(d, 0.95)), ms(percentile(d, 0.99))
	r.MeanMs, r.MinMs = ms(sum/time.Duration(len(d))), ms(d[0])
	return r
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Derive fills each result's WANRoundTrips (when rtt > 0) and SpeedupVsDirect from the
// direct series of the same protocol and pattern.
func Derive(results []Result, rtt time.Duration) {
	direct := map[[2]string]float64{}
	for _, r := range results {
		if r.Mode == Direct {
			direct[[2]string{r.Protocol, r.Pattern}] = r.P50Ms
		}
	}
	for i := range results {
		r := &results[i]
		if rtt > 0 {
			r.RTTMs = ms(rtt)
			trips := round2(r.P50Ms / ms(rtt))
			r.WANRoundTrips = &trips
		}
		if d, ok := direct[[2]string{r.Protocol, r.Pattern}]; ok && r.P50Ms > 0 {
			r.SpeedupVsDirect = round2(d / r.P50Ms)
		}
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// WriteTable prints results as an aligned table for a terminal.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "protocol\tpattern\tmode\tp50 ms\tp95 ms\tp99 ms\tWAN round trips\tspeedup vs direct\t")
	for _, r := range results {
		trips := "-"
		if r.WANRoundTrips != nil {
			trips = fmt.Sprintf("%.2f", *r.WANRoundTrips)
		}
		speedup := "-"
		if r.SpeedupVsDirect > 0 {
			speedup = fmt.Sprintf("%.1fx", r.SpeedupVsDirect)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Protocol, r.Pattern, r.Mode,
			fmtMs(r.P50Ms), fmtMs(r.P95Ms), fmtMs(r.P99Ms), trips, speedup)
	}
	return tw.Flush()
}

// WriteThroughputTable prints throughput results as an aligned table for a terminal.
func WriteThroughputTable(w io.Writer, results []ThroughputResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tclients\tops/s\tp50 ms\tp95 ms\tp99 ms\terrors\tvs direct\tCPU us/op\tsyscalls/op\tKiB/idle client\t")
	for _, r := range results {
		vs := "-"
		if r.VsDirect > 0 {
			vs = fmt.Sprintf("%.2fx", r.VsDirect)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.Target, r.Clients, r.OpsPerSec,
			fmtMs(r.P50Ms), fmtMs(r.P95Ms), fmtMs(r.P99Ms), r.Errors, vs,
			fmtOpt(r.CPUUsPerOp, "%.1f"), fmtOpt(r.SyscallsPerOp, "%.2f"), fmtOpt(r.IdleKiBPerClient, "%.1f"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if len(r.TopSyscalls) > 0 {
			var parts []string
			for _, c := range r.TopSyscalls {
				parts = append(parts, fmt.Sprintf("%s %.2f", c.Name, c.PerOp))
			}
			fmt.Fprintf(w, "%s syscalls per op: %s\n", r.Target, strings.Join(parts, ", "))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "%s: %s\n", r.Target, n)
		}
	}
	return nil
}

// fmtOpt formats a figure that may not have been measured.
func fmtOpt(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// fmtMs shows a latency with about three significant digits.
func fmtMs(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// WriteJSONFile writes v, indented, to path.
func WriteJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LatencyReport is the JSON document of `slipstream bench latency --json`.
type LatencyReport struct {
	Results []Result `json:"results"`
}

// ProgressBar draws one line of progress on a terminal, redrawn in place. Nothing else may
// write to the terminal between Update and Finish.
type ProgressBar struct {
	w     io.Writer
	label string
	mu    sync.Mutex
	last  time.Time
	start time.Time
}

// NewProgressBar returns a bar that writes to w, labelled label.
func NewProgressBar(w io.Writer, label string) *ProgressBar {
	return &ProgressBar{w: w, label: label, start: time.Now()}
}

// Update shows done of total, at most 20 times a second and always at the end.
func (p *ProgressBar) Update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 50*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	filled := 0
	if total > 0 {
		filled = width * done / total
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %4.0fs", p.label, strings.Repeat("█", filled),
		strings.Repeat("·", width-filled), done, total, now.Sub(p.start).Seconds())
}

// Finish clears the bar's line.
func (p *ProgressBar) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}
