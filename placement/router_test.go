package placement

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// region is a test pool: a transport that records what it opened, an origin latency per
// database, and a switch that takes it down.
type region struct {
	name   string
	lat    map[string]time.Duration
	down   atomic.Bool
	opened atomic.Int32
}

func (g *region) Profile(ctx context.Context, db string) (link.Profile, error) {
	if g.down.Load() {
		return link.Profile{}, errors.New("connection refused")
	}
	return link.Profile{Parameters: map[string]string{"region": g.name}}, nil
}

func (g *region) Open(ctx context.Context, db string, params map[string]string) (link.Stream, error) {
	if g.down.Load() {
		return nil, errors.New("connection refused")
	}
	g.opened.Add(1)
	return nil, nil
}

func (g *region) candidate() Candidate {
	return Candidate{Region: g.name, Transport: g,
		Latency: func(ctx context.Context, db string) (time.Duration, error) {
			if g.down.Load() {
				return 0, errors.New("connection refused")
			}
			return g.lat[db], nil
		}}
}

func threeRegions() (*region, *region, *region) {
	return &region{name: "eu", lat: map[string]time.Duration{"app": 80 * time.Millisecond, "logs": 2 * time.Millisecond}},
		&region{name: "us-east", lat: map[string]time.Duration{"app": 3 * time.Millisecond, "logs": 90 * time.Millisecond}},
		&region{name: "us-west", lat: map[string]time.Duration{"app": 40 * time.Millisecond, "logs": 60 * time.Millisecond}}
}

func TestRouterPlacesEachDatabaseAtThePoolNearestItsOrigin(t *testing.T) {
	eu, east, west := threeRegions()
	r := NewRouter(Config{Candidates: []Candidate{eu.candidate(), east.candidate(), west.candidate()},
		Databases: []string{"app", "logs"}})
	r.Refresh(context.Background())
	if got := r.Choice("app"); got != "us-east" {
		t.Errorf("app placed at %q, want us-east (3 ms from its origin)", got)
	}
	if got := r.Choice("logs"); got != "eu" {
		t.Errorf("logs placed at %q, want eu (2 ms from its origin)", got)
	}
	if _, err := r.Open(context.Background(), "app", nil); err != nil {
		t.Fatal(err)
	}
	if east.opened.Load() != 1 || eu.opened.Load()+west.opened.Load() != 0 {
		t.Errorf("sessions opened: eu %d, us-east %d, us-west %d; want only us-east", eu.opened.Load(), east.opened.Load(), west.opened.Load())
	}
}

func TestRouterPinOverridesLatency(t *testing.T) {
	eu, east, west := threeRegions()
	r := NewRouter(Config{Candidates: []Candidate{eu.candidate(), east.candidate(), west.candidate()},
		Databases: []string{"app"}, Pins: map[string]string{"app": "us-west"}})
	r.Refresh(context.Background())
	if got := r.Choice("app"); got != "us-west" {
		t.Errorf("pinned app placed at %q, want us-west", got)
	}
	// A pinned pool that dies still gives way to the next best.
	west.down.Store(true)
	r.Refresh(context.Background())
	if got := r.Choice("app"); got != "us-east" {
		t.Errorf("with the pinned pool down, app placed at %q, want us-east", got)
	}
}

func TestRouterMovesAwayFromADeadPoolAtOnceAndBackWhenItReturns(t *testing.T) {
	eu, east, west := threeRegions()
	r := NewRouter(Config{Candidates: []Candidate{eu.candidate(), east.candidate(), west.candidate()},
		Databases: []string{"app"}})
	r.Refresh(context.Background())
	east.down.Store(true)
	// No Refresh: the failed Open itself moves the database.
	if _, err := r.Open(context.Background(), "app", nil); err != nil {
		t.Fatalf("Open with the nearest pool down: %v", err)
	}
	if west.opened.Load() != 1 {
		t.Errorf("after us-east died the session went to eu %d / us-west %d; want us-west (next nearest)", eu.opened.Load(), west.opened.Load())
	}
	if got := r.Choice("app"); got != "us-west" {
		t.Errorf("Choice = %q after the failure, want us-west", got)
	}
	east.down.Store(false)
	r.Refresh(context.Background())
	if got := r.Choice("app"); got != "us-east" {
		t.Errorf("Choice = %q after us-east came back, want us-east", got)
	}
}

func TestRouterReportsNoPoolWhenAllAreDown(t *testing.T) {
	eu, east, west := threeRegions()
	for _, g := range []*region{eu, east, west} {
		g.down.Store(true)
	}
	r := NewRouter(Config{Candidates: []Candidate{eu.candidate(), east.candidate(), west.candidate()},
		Databases: []string{"app"}})
	r.Refresh(context.Background())
	_, err := r.Open(context.Background(), "app", nil)
	if !errors.Is(err, ErrNoPool) {
		t.Fatalf("Open with every pool down: %v, want ErrNoPool", err)
	}
}

func TestProbeMeasuresTCPConnectsAndFailsOnAClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d, err := Probe(context.Background(), ln.Addr().String(), "", 5)
	if err != nil || d <= 0 || d > time.Second {
		t.Fatalf("Probe of a loopback listener = %v, %v", d, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Probe(context.Background(), addr, "", 3); err == nil {
		t.Fatal("Probe of a closed port succeeded")
	}

	p := NewProber(map[string]Target{"app": {Addr: addr, Protocol: "postgres"}, "main": {}}, 3, time.Minute)
	if _, err := p.Latency("app"); !errors.Is(err, ErrNotMeasured) {
		t.Fatalf("Latency before Measure: %v, want ErrNotMeasured", err)
	}
	p.Measure(context.Background())
	if _, err := p.Latency("app"); err == nil {
		t.Error("Latency of an unreachable origin has no error")
	}
	if d, err := p.Latency("main"); err != nil || d != 0 {
		t.Errorf("embedded origin latency = %v, %v; want 0", d, err)
	}
}
