package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentilesAreNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	r := summarize(Postgres, Persistent, Direct, d)
	if r.P50Ms != 50 || r.P95Ms != 95 || r.P99Ms != 99 || r.MinMs != 1 || r.MeanMs != 50.5 || r.Queries != 100 {
		t.Errorf("got p50 %v p95 %v p99 %v min %v mean %v n %d; want 50 95 99 1 50.5 100",
			r.P50Ms, r.P95Ms, r.P99Ms, r.MinMs, r.MeanMs, r.Queries)
	}
	one := summarize(Postgres, Persistent, Direct, []time.Duration{7 * time.Millisecond})
	if one.P50Ms != 7 || one.P99Ms != 7 {
		t.Errorf("one sample: p50 %v p99 %v, want 7 and 7", one.P50Ms, one.P99Ms)
	}
}

func sampleResults() []Result {
	rs := []Result{
		{Protocol: Postgres, Pattern: NewConnection, Mode: Direct, P50Ms: 200, P95Ms: 210, P99Ms: 220},
		{Protocol: Postgres, Pattern: NewConnection, Mode: Uncached, P50Ms: 50, P95Ms: 55, P99Ms: 60},
		{Protocol: Postgres, Pattern: NewConnection, Mode: Cached, P50Ms: 1, P95Ms: 2, P99Ms: 3},
		{Protocol: Postgres, Pattern: Persistent, Mode: Direct, P50Ms: 50, P95Ms: 51, P99Ms: 52},
		{Protocol: Postgres, Pattern: Persistent, Mode: Uncached, P50Ms: 50, P95Ms: 51, P99Ms: 52},
		{Protocol: Postgres, Pattern: Persistent, Mode: Cached, P50Ms: 0.05, P95Ms: 0.1, P99Ms: 0.2},
	}
	Derive(rs, 50*time.Millisecond)
	return rs
}

func TestDeriveComparesEachSeriesWithDirectOfItsPattern(t *testing.T) {
	rs := sampleResults()
	for _, c := range []struct {
		i              int
		trips, speedup float64
	}{{0, 4, 1}, {1, 1, 4}, {2, 0.02, 200}, {3, 1, 1}, {5, 0, 1000}} {
		r := rs[c.i]
		if r.WANRoundTrips == nil || *r.WANRoundTrips != c.trips || r.SpeedupVsDirect != c.speedup {
			t.Errorf("%s %s: trips %v speedup %v, want %v and %v", r.Pattern, r.Mode, r.WANRoundTrips, r.SpeedupVsDirect, c.trips, c.speedup)
		}
	}
	unknown := []Result{{Protocol: Postgres, Pattern: Persistent, Mode: Cached, P50Ms: 1}}
	Derive(unknown, 0)
	if unknown[0].WANRoundTrips != nil || unknown[0].SpeedupVsDirect != 0 {
		t.Errorf("without an RTT or a direct series: trips %v speedup %v, want nil and 0", unknown[0].WANRoundTrips, unknown[0].SpeedupVsDirect)
	}
}

func TestLatencyJSONHasTheIssuesFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSONFile(path, LatencyReport{Results: sampleResults()}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Results) != 6 {
		t.Fatalf("%d results, want 6", len(doc.Results))
	}
	for _, k := range []string{"protocol", "pattern", "mode", "p50_ms", "p95_ms", "p99_ms", "wan_round_trips", "speedup_vs_direct"} {
		if _, ok := doc.Results[1][k]; !ok {
			t.Errorf("result has no %q: %v", k, doc.Results[1])
		}
	}
	if doc.Results[1]["pattern"] != "new-connection" || doc.Results[1]["mode"] != "uncached" {
		t.Errorf("pattern and mode %v %v, want new-connection uncached", doc.Results[1]["pattern"], doc.Results[1]["mode"])
	}
}

func TestTableShowsEverySeries(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleResults()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 7 || !strings.Contains(lines[2], "uncached") || !strings.Contains(lines[2], "4.0x") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestChartIsWellFormedSVGWithEveryBarAndSpeedup(t *testing.T) {
	var b bytes.Buffer
	if err := WriteChart(&b, sampleResults(), "Latency <50ms> & more", "sub"); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	rects := 0
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "rect" {
				rects++
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	// background + 3 legend swatches + 6 bars
	if rects != 10 {
		t.Errorf("%d rects, want 10", rects)
	}
	for _, want := range []string{"4.0× faster", "200× faster", "1000× faster", "Latency <50ms> & more", "new connection per query"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("chart text lacks %q", want)
		}
	}
}

func TestChartSaysSlowerForARatioUnderOneAndHasNoEmptyBand(t *testing.T) {
	rs := sampleResults()
	rs[4].P50Ms, rs[4].P95Ms = 55, 56 // persistent, uncached: slower than direct's 50
	Derive(rs, 50*time.Millisecond)
	var b bytes.Buffer
	if err := WriteChart(&b, rs, "t", ""); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	if !strings.Contains(svg, "1.1× slower") || strings.Contains(svg, "0.9× faster") {
		t.Errorf("a ratio of 0.91 is not labelled 1.1× slower:\n%s", svg)
	}
	// The highest p95 is 210 ms: no grid line at 1000 ms, the decade over it with no bar in it.
	if strings.Contains(svg, ">1000 ms<") || !strings.Contains(svg, ">100 ms<") {
		t.Errorf("the scale does not end just over the highest bar:\n%s", svg)
	}
}
