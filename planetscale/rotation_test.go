package planetscale

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
)

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, not a wait for an event
	}
}

func startRotator(t *testing.T, c *Client, ttl time.Duration) *Rotator {
	t.Helper()
	r, err := StartRotator(context.Background(), RotatorConfig{Client: c, Target: Target{Org: "acme", Database: "shop", Branch: "main", Kind: KindMySQL},
		DB: "shop", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRotatorReplacesAndDeletesOnlyWhenDrained(t *testing.T) {
	f, c := newFake(t)
	r := startRotator(t, c, 900*time.Millisecond)
	first, err := r.Source(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	firstID := r.Current().ID
	release, ok := first.Hold() // an origin connection, leased in a transaction
	if !ok {
		t.Fatal("the current credential is retired")
	}
	eventually(t, 5*time.Second, "the credential was not replaced", func() bool { return r.Current().ID != firstID })
	if !first.IsRetired() {
		t.Error("the replaced credential is not retired")
	}
	next, err := r.Source(context.Background())
	if err != nil || next == first {
		t.Fatalf("Source after rotation = %v, %v", next, err)
	}
	isLive := func(id string) bool {
		for _, c := range f.Live() {
			if c.ID == id {
				return true
			}
		}
		return false
	}
	if !isLive(firstID) {
		t.Fatal("the replaced credential was deleted while a connection still used it")
	}
	release()
	eventually(t, 5*time.Second, "the replaced credential was not deleted once drained", func() bool { return !isLive(firstID) })
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if live := f.Live(); len(live) != 0 {
		t.Errorf("credentials left after Close: %+v", live)
	}
}

func TestRotatorSurvivesTheAPIDownPastExpiry(t *testing.T) {
	f, c := newFake(t)
	r := startRotator(t, c, 600*time.Millisecond)
	defer r.Close(context.Background())
	f.SetDown(http.StatusServiceUnavailable)
	// Until expiry the current credential keeps serving.
	if _, err := r.Source(context.Background()); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	var err error
	eventually(t, 5*time.Second, "Source kept answering past the expiry", func() bool {
		_, err = r.Source(context.Background())
		return err != nil
	})
	if !errors.Is(err, pool.ErrNoCredential) || !strings.Contains(err.Error(), "database shop") || !strings.Contains(err.Error(), "503") {
		t.Errorf("the expiry error %q does not say which database and what the API said", err)
	}
	f.SetDown(0)
	eventually(t, 5*time.Second, "service did not resume with the API back", func() bool {
		_, err := r.Source(context.Background())
		return err == nil
	})
}
