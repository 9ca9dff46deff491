package changes

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Sink that writes down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	until  time.Time
}

func (r *recorder) add(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) Invalidate(db string, tables []string, all bool) {
	if all {
		r.add("all " + db)
		return
	}
	r.add("tables " + db + " " + strings.Join(tables, ","))
}
func (r *recorder) Suspend(db string) { r.add("suspend " + db) }
func (r *recorder) Resume(db string)  { r.add("resume " + db) }
func (r *recorder) CurrentUntil(db string, t time.Time) {
	r.mu.Lock()
	r.until = t
	r.mu.Unlock()
}
func (r *recorder) has(e string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, e)
}

func TestAStreamIsCachedOnlyWhileItIsCurrent(t *testing.T) {
	sink := &recorder{}
	h := newHealth(Config{DB: "app", Sink: sink, MaxLag: time.Second, Logger: discardLogger()})
	defer h.stop()

	h.suspend()
	if err := h.commit([]string{"t"}, false, time.Now().Add(-time.Hour)); err != nil {
		t.Errorf("an old commit while catching up: %v, want it taken", err)
	}
	if !sink.has("suspend app") {
		t.Fatalf("suspend did not reach the sink: %q", sink.events)
	}
	h.queue.flush()
	if sink.has("tables app t") {
		t.Error("a transaction replayed while catching up was invalidated on its own, not with the whole database on resuming")
	}
	// While suspended, the database is invalidated again and again for caches reached only so.
	deadline := time.Now().Add(2 * time.Second)
	for !sink.has("all app") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !sink.has("all app") {
		t.Error("a suspended database was never invalidated whole")
	}
	h.caughtUp()
	if !sink.has("resume app") {
		t.Errorf("caught up, but not resumed: %q", sink.events)
	}
	err := h.commit([]string{"t"}, false, time.Now())
	h.queue.flush()
	if err != nil || !sink.has("tables app t") {
		t.Errorf("a fresh commit: %v, %q", err, sink.events)
	}
	if err := h.commit([]string{"t"}, false, time.Now().Add(-2*time.Second)); !errors.Is(err, errBehind) {
		t.Errorf("a commit older than max_lag: %v, want errBehind", err)
	}
	h.mu.Lock()
	suspended := h.suspended
	h.mu.Unlock()
	if !suspended {
		t.Error("a stream behind by more than max_lag left the database cached")
	}
}

func TestBackoffGrowsToFiveSecondsWithJitter(t *testing.T) {
	for attempt, limit := range map[int]time.Duration{0: 100 * time.Millisecond, 3: 800 * time.Millisecond, 10: 5 * time.Second} {
		for range 20 {
			if d := backoff(attempt); d < limit/2 || d > limit {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, d, limit/2, limit)
			}
		}
	}
}

func TestDefaultSlotIsASafeName(t *testing.T) {
	if got := DefaultSlot("My-App.db"); got != "slipstream_my_app_db" {
		t.Errorf("DefaultSlot = %q", got)
	}
}

// gate is a Sink whose first Invalidate waits until it is let go.
type gate struct {
	recorder
	held chan struct{}
	free chan struct{}
	once sync.Once
}

func (g *gate) Invalidate(db string, tables []string, all bool) {
	g.once.Do(func() { close(g.held); <-g.free })
	g.recorder.Invalidate(db, tables, all)
}

// While one invalidation is on its way, the transactions committed meanwhile are queued and
// go out as one; a position passes only once what was queued before it is invalidated.
func TestTransactionsCommittedDuringAnInvalidationGoOutAsOne(t *testing.T) {
	sink := &gate{held: make(chan struct{}), free: make(chan struct{})}
	h := newHealth(Config{DB: "app", Sink: sink, MaxLag: time.Minute, Logger: discardLogger()})
	defer h.stop()
	var passed []string
	var mu sync.Mutex
	pass := func(p string) func() { return func() { mu.Lock(); passed = append(passed, p); mu.Unlock() } }

	h.commit([]string{"a"}, false, time.Now())
	h.reached(pass("after a"))
	<-sink.held // a is on its way
	h.commit([]string{"c", "b"}, false, time.Now())
	h.commit([]string{"b"}, false, time.Now())
	h.reached(pass("after b"))
	mu.Lock()
	if len(passed) != 0 {
		t.Errorf("positions passed before their invalidations: %q", passed)
	}
	mu.Unlock()
	close(sink.free)
	h.queue.flush()
	if want := []string{"tables app a", "tables app b,c"}; !slices.Equal(sink.events, want) {
		t.Errorf("invalidations %q, want %q", sink.events, want)
	}
	if want := []string{"after a", "after b"}; !slices.Equal(passed, want) {
		t.Errorf("positions passed %q, want %q", passed, want)
	}
}

// TestTheStreamWaitsOutASilenceLongerThanAProbeHas: the probes decide when a stream is behind
// (it is suspended then, whatever its connection does); a quiet connection is counted lost only
// after a probe would have been, so a starved walsender with nothing to send costs no
// suspension (issue 16).
func TestTheStreamWaitsOutASilenceLongerThanAProbeHas(t *testing.T) {
	for _, tc := range []struct{ maxLag, want time.Duration }{
		{DefaultMaxLag, 6 * time.Second},
		{time.Second, 3 * time.Second},
		{30 * time.Second, 31 * time.Second},
	} {
		cfg := Config{MaxLag: tc.maxLag}
		h := &health{cfg: cfg}
		if got := silenceOf(cfg); got != tc.want || got <= h.probeLag() {
			t.Errorf("max_lag %v: silence %v, want %v (a probe has %v)", tc.maxLag, got, tc.want, h.probeLag())
		}
	}
}
