package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// modeColor is each mode's bar colour; the legend reads them in this order.
var modeColor = []struct{ mode, color, label string }{
	{Direct, "#9aa5b1", "direct to the database"},
	{Uncached, "#3b82f6", "Slipstream, uncached"},
	{Cached, "#f59e0b", "Slipstream, cached"},
}

// WriteChart draws results as an SVG bar chart: one group of bars per protocol and pattern,
// one bar per mode whose height is the median latency on a logarithmic scale (cached answers
// are hundreds of times faster than direct ones, so a linear scale would hide them), a thin
// whisker up to p95, the median written above each bar and the speedup against direct over
// it. title heads the chart; subtitle (the RTT and the command, say) goes under it.
func WriteChart(w io.Writer, results []Result, title, subtitle string) error {
	type group struct {
		name string
		bars []Result
	}
	var groups []group
	for _, r := range results {
		name := r.Pattern
		if protocols(results) > 1 {
			name = r.Protocol + " · " + r.Pattern
		}
		if len(groups) == 0 || groups[len(groups)-1].name != name {
			groups = append(groups, group{name: name})
		}
		g := &groups[len(groups)-1]
		g.bars = append(g.bars, r)
	}

	// The scale: from the whole decade under the lowest p50 to a little over the highest p95
	// (room for its labels), not to the next decade, which left an empty band over the bars.
	lo, hi := math.Inf(1), 0.0
	for _, r := range results {
		if r.P50Ms > 0 {
			lo = math.Min(lo, r.P50Ms)
		}
		hi = math.Max(hi, math.Max(r.P50Ms, r.P95Ms))
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Log10(hi)+chartHeadroom
	if dHi < dLo+1 {
		dHi = dLo + 1
	}

	const (
		barW, barGap, groupGap = 88.0, 14.0, 48.0
		left, right, top       = 76.0, 24.0, 132.0
		plotH, bottom          = 300.0, 64.0
	)
	plotW := groupGap
	for _, g := range groups {
		plotW += float64(len(g.bars))*(barW+barGap) - barGap + groupGap
	}
	width := left + plotW + right
	width = math.Max(width, math.Max(640, left+11*float64(len(title))))
	height := top + plotH + bottom
	y := func(v float64) float64 {
		if v <= 0 {
			return top + plotH
		}
		f := (math.Log10(v) - dLo) / (dHi - dLo)
		return top + plotH*(1-math.Max(0, math.Min(1, f)))
	}

	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="30" font-size="20" font-weight="600" fill="#111827">%s</text>`+"\n", left, esc(title))
	if subtitle != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="52" font-size="13" fill="#4b5563">%s</text>`+"\n", left, esc(subtitle))
	}
	// Legend.
	lx := left
	for _, m := range modeColor {
		fmt.Fprintf(&b, `<rect x="%.0f" y="66" width="12" height="12" rx="2" fill="%s"/>`, lx, m.color)
		fmt.Fprintf(&b, `<text x="%.0f" y="77" font-size="12" fill="#374151">%s</text>`+"\n", lx+18, esc(m.label))
		lx += 18 + 7.2*float64(len(m.label)) + 24
	}
	fmt.Fprintf(&b, `<path d="M%.0f 66V78M%.0f 66H%.0f" stroke="#374151" stroke-width="1.2" fill="none"/>`, lx+6, lx, lx+12)
	fmt.Fprintf(&b, `<text x="%.0f" y="77" font-size="12" fill="#374151">p95</text>`+"\n", lx+18)
	// Grid: one line per decade, labelled in ms.
	for d := dLo; d <= math.Floor(dHi); d++ {
		v := math.Pow(10, d)
		gy := y(v)
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, left, left+plotW, gy, gy)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="11" fill="#6b7280" text-anchor="end">%s ms</text>`+"\n", left-8, gy+4, axisLabel(v))
	}
	fmt.Fprintf(&b, `<text transform="translate(18 %.0f) rotate(-90)" font-size="12" fill="#6b7280" text-anchor="middle">median latency per query (log scale)</text>`+"\n", top+plotH/2)
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#9ca3af"/>`+"\n", left, left+plotW, top+plotH, top+plotH)

	x := left + groupGap
	for _, g := range groups {
		gx := x
		for _, r := range g.bars {
			color := "#9ca3af"
			for _, m := range modeColor {
				if m.mode == r.Mode {
					color = m.color
				}
			}
			by := y(r.P50Ms)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.1f" rx="3" fill="%s"><title>%s %s %s: p50 %s ms, p95 %s ms, p99 %s ms</title></rect>`+"\n",
				x, by, barW, top+plotH-by, color, esc(r.Protocol), esc(r.Pattern), esc(r.Mode), fmtMs(r.P50Ms), fmtMs(r.P95Ms), fmtMs(r.P99Ms))
			if r.P95Ms > r.P50Ms {
				wy := y(r.P95Ms)
				cx := x + barW/2
				fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1f" stroke="#374151" stroke-width="1.2" fill="none"/>`+"\n",
					cx, by, wy, cx-6, wy, cx+6)
			}
			labelY := math.Min(by, y(r.P95Ms)) - 8
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" fill="#111827" text-anchor="middle">%s ms</text>`+"\n", x+barW/2, labelY, fmtMs(r.P50Ms))
			if r.Mode != Direct && r.SpeedupVsDirect > 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" font-weight="700" fill="%s" text-anchor="middle">%s</text>`+"\n",
					x+barW/2, labelY-17, darker(color), speedupText(r.SpeedupVsDirect))
			}
			if r.WANRoundTrips != nil {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="10" fill="#6b7280" text-anchor="middle">%s RTT</text>`+"\n",
					x+barW/2, top+plotH+14, tripsLabel(*r.WANRoundTrips))
			}
			x += barW + barGap
		}
		x -= barGap
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="13" font-weight="600" fill="#111827" text-anchor="middle">%s</text>`+"\n",
			(gx+x)/2, top+plotH+36, esc(patternLabel(g.name)))
		x += groupGap
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func protocols(results []Result) int {
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Protocol] = true
	}
	return len(seen)
}

func patternLabel(name string) string {
	name = strings.Replace(name, NewConnection, "new connection per query", 1)
	return strings.Replace(name, Persistent, "persistent connection", 1)
}

func axisLabel(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}

// chartHeadroom is how far, in decades, the scale goes over the highest p95: room for the
// labels over the tallest bar (a factor of 1.35).
const chartHeadroom = 0.13

// speedupText says how a series compares with direct: "7.8× faster", or for a ratio under 1
// (Slipstream slower than direct) "1.1× slower", never "0.9× faster".
func speedupText(x float64) string {
	if x < 1 {
		return speedupLabel(1/x) + "× slower"
	}
	return speedupLabel(x) + "× faster"
}

func speedupLabel(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// darker returns a darker shade of a #rrggbb colour, for text over white.
func darker(hex string) string {
	var r, g, b int
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b); err != nil {
		return hex
	}
	return fmt.Sprintf("#%02x%02x%02x", r*7/10, g*7/10, b*7/10)
}

func tripsLabel(x float64) string {
	if x < 0.1 {
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.1f", x)
}
