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
	c.Put("app", key, resp, snap, time.Minute, now)
	c.Wait()
	if got, ok := c.Get("app", key, now); !ok || string(got) != "rows" {
		t.Fatalf("Get after Put = %q, %v", got, ok)
	}
	c.Invalidate("app", []string{"orders"}, false)
	if _, ok := c.Get("app", key, now); !ok {
		t.Error("a write to another table invalidated the entry")
	}
	c.Invalidate("other", []string{"users"}, false)
	if _, ok := c.Get("app", key, now); !ok {
		t.Error("a write to another database invalidated the entry")
	}
	c.Invalidate("app", []string{"public.users"}, false)
	if _, ok := c.Get("app", key, now); ok {
		t.Error("a write to public.users left a cached read of users")
	}
}

func TestAWriteOfUnknownReachInvalidatesTheWholeDatabase(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	key := []byte("k")
	c.Put("app", key, []byte("v"), c.Snapshot("app", []string{"t"}), time.Minute, now)
	c.Wait()
	c.Invalidate("app", nil, true)
	if _, ok := c.Get("app", key, now); ok {
		t.Error("the entry survived a database-wide invalidation")
	}
}

func TestAnEntrySnapshottedBeforeAWriteIsNeverFresh(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	snap := c.Snapshot("app", []string{"t"})                         // the read is sent...
	c.Invalidate("app", []string{"t"}, false)                        // ...a write commits meanwhile...
	c.Put("app", []byte("k"), []byte("old"), snap, time.Minute, now) // ...the old answer arrives
	c.Wait()
	if _, ok := c.Get("app", []byte("k"), now); ok {
		t.Error("an answer read before a write was served after it")
	}
}

func TestAnEntryExpiresAfterItsMaxAge(t *testing.T) {
	c := newCache(t)
	now := time.Now()
	c.Put("app", []byte("k"), []byte("v"), c.Snapshot("app", nil), time.Second, now)
	c.Wait()
	if _, ok := c.Get("app", []byte("k"), now.Add(2*time.Second)); ok {
		t.Error("served past max_age")
	}
}

func TestAKeyIsAdmittedTheSecondTimeItMisses(t *testing.T) {
	c := newCache(t)
	if c.Admit([]byte("q1")) {
		t.Error("admitted at the first miss")
	}
	if !c.Admit([]byte("q1")) {
		t.Error("not admitted at the second miss")
	}
}

func TestConcurrentMissesShareOneFlight(t *testing.T) {
	c := newCache(t)
	key := []byte("k")
	f, leader := c.Join(key)
	if !leader {
		t.Fatal("the first caller does not lead")
	}
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
			got[i] = string(g.Wait(nil))
		}()
	}
	c.Land(key, f, []byte("answer"))
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
