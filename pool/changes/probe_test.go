package changes

import (
	"testing"
	"time"
)

func TestAReachedProbeVouchesForEveryEarlierOne(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name    string
		reached []func() bool // one mark a second from t0; nil: not answered
		want    time.Duration // the oldest outstanding, from t0; -1: none
	}{
		{"none taken", nil, -1},
		{"one reached", []func() bool{yes}, -1},
		{"one outstanding", []func() bool{no}, 0},
		{"one unanswered", []func() bool{nil}, 0},
		{"a failed probe before a reached one", []func() bool{nil, no, yes}, -1},
		{"reached, then outstanding", []func() bool{yes, no, nil}, time.Second},
		{"outstanding, reached, outstanding", []func() bool{no, yes, no}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p probes
			for i, r := range tc.reached {
				p.answered(p.take(t0.Add(time.Duration(i)*time.Second)), r)
			}
			at, ok := p.oldest()
			if ok != (tc.want >= 0) || (ok && at.Sub(t0) != tc.want) {
				t.Errorf("oldest = %v, %v; want %v", at.Sub(t0), ok, tc.want)
			}
		})
	}
}

// A stream that has not applied what the origin held at a probe is suspended before that
// probe is max_lag old, and ends (fellBehind); while it keeps up, it vouches for the
// database's answers until its oldest outstanding probe is max_lag old.
func TestAStreamThatLeavesAProbeUnreachedForMaxLagIsSuspended(t *testing.T) {
	const maxLag = 3 * time.Second // above minProbeLag
	sink := &recorder{}
	h := &health{cfg: Config{DB: "app", Sink: sink, MaxLag: maxLag, Logger: discardLogger()}, done: make(chan struct{})}
	now := time.Now()
	until := func() time.Time { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.until }

	h.watch(now)
	if got := until(); !got.Equal(now.Add(maxLag)) {
		t.Errorf("no probe outstanding: vouched until %v, want now + max_lag", got.Sub(now))
	}
	h.probes.answered(h.probes.take(now.Add(-10*time.Second)), func() bool { return true })
	h.probes.answered(h.probes.take(now.Add(-500*time.Millisecond)), func() bool { return false })
	h.watch(now)
	if got := until(); !got.Equal(now.Add(maxLag-500*time.Millisecond)) || h.fellBehind() || sink.has("suspend app") {
		t.Errorf("a probe 500 ms old outstanding: vouched until now + %v, suspended %v; want max_lag - 500ms, not suspended", got.Sub(now), sink.has("suspend app"))
	}
	h.watch(now.Add(maxLag - 500*time.Millisecond - suspendEarly/2)) // the probe's deadline is closer than suspendEarly
	if !sink.has("suspend app") || !h.fellBehind() {
		t.Fatalf("a probe about to be max_lag old outstanding: %q, want suspended and the stream ended", sink.events)
	}
	if h.fellBehind() {
		t.Error("fellBehind said twice")
	}
	if !until().Equal(now.Add(maxLag - 500*time.Millisecond)) {
		t.Error("suspending moved the time vouched for")
	}
}

func TestAProbeHasAtLeastMinProbeLag(t *testing.T) {
	for maxLag, want := range map[time.Duration]time.Duration{100 * time.Millisecond: minProbeLag, time.Minute: time.Minute} {
		if got := (&health{cfg: Config{MaxLag: maxLag}}).probeLag(); got != want {
			t.Errorf("max_lag %v: probeLag %v, want %v", maxLag, got, want)
		}
	}
}
