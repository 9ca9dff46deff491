package proxy

import (
	"testing"
	"time"
)

func TestLoginGuardSlowsAnAddressDownAfterRepeatedFailures(t *testing.T) {
	var g loginGuard
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	want := []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := g.fail("10.0.0.1", now.Add(time.Duration(i)*time.Second)); got != w {
			t.Errorf("failure %d: waits %v, want %v", i+1, got, w)
		}
	}
	if got := g.fail("10.0.0.2", now); got != 0 {
		t.Errorf("another address's first failure waits %v, want 0", got)
	}
	if got := g.fail("10.0.0.1", now.Add(guardWindow+time.Hour)); got != 0 {
		t.Errorf("a failure after a quiet window waits %v, want 0: old failures are forgotten", got)
	}
}
