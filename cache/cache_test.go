package cache

import (
	"sync"
	"testing"
	"time"
)

func newCache(t *testing.T) *Cache {
	t.Helper()
	c, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestAnEntryIsServedUntilATableItReadIsWritten(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	key, resp := []byte("app\x00select * from users"), []byte("rows")
	snap := c.Snapshot("app", []string{"users"})
	c.Put("app", key, resp, snap, time.Minute, 0, now)
	c.Settle()
	if got, st := c.Get("app", key, now); st != Hit || string(got) != "rows" {
		t.Fatalf("Get after Put = %q, %v", got, st)
	}
	c.Invalidate("app", []string{"orders"}, false)
	if _, st := c.Get("app", key, now); st != Hit {
		t.Error("a write to another table invalidated the entry")
	}
	c.Invalidate("other", []string{"users"}, false)
	if _, st := c.Get("app", key, now); st != Hit {
		t.Error("a write to another database invalidated the entry")
	}
	c.Invalidate("app", []string{"public.users"}, false)
	if _, st := c.Get("app", key, now); st != Miss {
		t.Error("a write to public.users left a cached read of users")
	}
}

func TestAWriteOfUnknownReachInvalidatesTheWholeDatabase(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	key := []byte("k")
	c.Put("app", key, []byte("v"), c.Snapshot("app", []string{"t"}), time.Minute, 0, now)
	c.Settle()
	c.Invalidate("app", nil, true)
	if _, st := c.Get("app", key, now); st != Miss {
		t.Error("the entry survived a database-wide invalidation")
	}
}

func TestAnEntrySnapshottedBeforeAWriteIsNeverFresh(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	snap := c.Snapshot("app", []string{"t"})                            // the read is sent...
	c.Invalidate("app", []string{"t"}, false)                           // ...a write commits meanwhile...
	c.Put("app", []byte("k"), []byte("old"), snap, time.Minute, 0, now) // ...the old answer arrives
	c.Settle()
	if _, st := c.Get("app", []byte("k"), now); st != Miss {
		t.Error("an answer read before a write was served after it")
	}
}

func TestAnEntryExpiresAfterItsMaxAge(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	c.Put("app", []byte("k"), []byte("v"), c.Snapshot("app", nil), time.Second, 10*time.Second, now)
	c.Settle()
	if _, st := c.Get("app", []byte("k"), now.Add(2*time.Second)); st != Stale {
		t.Errorf("within stale_while_revalidate: %v, want stale", st)
	}
	if _, st := c.Get("app", []byte("k"), now.Add(12*time.Second)); st != Miss {
		t.Errorf("past max_age and stale_while_revalidate: %v, want miss", st)
	}
	if !c.StartRefresh([]byte("k")) || c.StartRefresh([]byte("k")) {
		t.Error("StartRefresh must grant exactly one refresh at a time")
	}
	c.EndRefresh([]byte("k"))
	if !c.StartRefresh([]byte("k")) {
		t.Error("no refresh granted after the last one ended")
	}
}

func TestConcurrentMissesShareOneFlight(t *testing.T) {
	c := newCache(t)
	key := []byte("k")
	f, leader := c.Join(key)
	if !leader {
		t.Fatal("the first caller does not lead")
	}
	snap := c.Snapshot("app", []string{"t"})
	var wg sync.WaitGroup
	got := make([]string, 5)
	for i := range got {
		g, lead := c.Join(key)
		if lead {
			t.Fatal("a second leader")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = string(c.Wait("app", g, nil))
		}()
	}
	c.Land(key, f, []byte("answer"), snap)
	wg.Wait()
	for i, g := range got {
		if g != "answer" {
			t.Errorf("follower %d got %q", i, g)
		}
	}
	if _, lead := c.Join(key); !lead {
		t.Error("a landed flight still leads new misses")
	}
}

func TestAFollowerNeverGetsAnAnswerFromBeforeAWrite(t *testing.T) {
	c := newCache(t)
	key := []byte("k")
	f, _ := c.Join(key)
	snap := c.Snapshot("app", []string{"t"})  // the leader asks
	g, _ := c.Join(key)                       // a follower joins
	c.Invalidate("app", []string{"t"}, false) // a write commits meanwhile
	c.Land(key, f, []byte("old"), snap)
	if got := c.Wait("app", g, nil); got != nil {
		t.Errorf("the follower got %q, read before the write; want nil (ask the origin)", got)
	}
}

// A database's change stream vouches for its answers until a time (CurrentUntil); an answer
// served later counts as a read served while the stream was behind, and lifting the limit
// (TTL caching) counts none.
func TestReadsServedAfterTheStreamVouchedAreCounted(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	key := []byte("k")
	c.Put("app", key, []byte("v"), c.Snapshot("app", []string{"t"}), time.Hour, 0, now)
	c.Put("other", key, []byte("v"), c.Snapshot("other", []string{"t"}), time.Hour, 0, now)
	c.Settle()
	c.CurrentUntil("app", now.Add(time.Second))
	for _, tc := range []struct {
		db    string
		at    time.Duration
		until bool // lift the limit first
		want  int64
	}{
		{"app", 0, false, 0},
		{"app", time.Second, false, 0},
		{"app", 2 * time.Second, false, 1},
		{"app", 3 * time.Second, false, 2},
		{"other", time.Hour - time.Second, false, 2}, // another database: no limit, app unchanged
		{"app", 4 * time.Second, true, 2},
	} {
		if tc.until {
			c.CurrentUntil("app", time.Time{})
		}
		if _, st := c.Get(tc.db, key, now.Add(tc.at)); st != Hit {
			t.Fatalf("%s at +%v: %v, want a hit", tc.db, tc.at, st)
		}
		if got := c.DBStats()["app"].ReadsBehind; got != tc.want {
			t.Errorf("%s at +%v: ReadsBehind of app = %d, want %d", tc.db, tc.at, got, tc.want)
		}
	}
	c.Suspend("app")
	if _, st := c.Get("app", key, now); st != Miss {
		t.Error("a suspended database answered from the cache")
	}
}
