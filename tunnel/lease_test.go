package tunnel_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// partition forwards the UDP datagrams of one edge to the pool end and back, and drops every
// one of them, both ways, while cut is set: a network partition.
type partition struct {
	cut atomic.Bool

	front *net.UDPConn // the edge's side
	back  *net.UDPConn // connected to the pool end

	mu   sync.Mutex
	edge net.Addr
}

func startPartition(t *testing.T, to string) *partition {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{}
	if p.front, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if p.back, err = net.DialUDP("udp", nil, raddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.front.Close(); p.back.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := p.front.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.edge = from
			p.mu.Unlock()
			if !p.cut.Load() {
				p.back.Write(buf[:n])
			}
		}
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := p.back.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			edge := p.edge
			p.mu.Unlock()
			if !p.cut.Load() && edge != nil {
				p.front.WriteTo(buf[:n], edge)
			}
		}
	}()
	return p
}

func (p *partition) addr() string { return p.front.LocalAddr().String() }

// within polls cond every 10 ms for up to d.
func within(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func TestAnEdgeCutOffStopsServingItsCacheBeforeAWriteIsAnswered(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	// Long enough that a loaded machine renews the lease (every ack/4) well within it (ack/2).
	const ack = 1500 * time.Millisecond
	addr, _ := startPoolEnd(t, poolTLS, pool.Config{}, tunnel.ServerConfig{AckTimeout: ack})
	part := startPartition(t, addr)
	var cutOff, other recorder
	edge := edgeWithCache(t, part.addr(), edgeTLS, &cutOff)
	writer := openStream(t, edgeWithCache(t, addr, edgeTLS, &other))

	// Connected, the pool end keeps renewing the lease: the edge serves its cache.
	if !within(5*time.Second, edge.CacheCurrent) {
		t.Fatal("a connected edge never got a lease on its cache")
	}
	for range 3 {
		time.Sleep(ack / 2)
		if !edge.CacheCurrent() {
			t.Fatal("a connected edge's lease lapsed between renewals")
		}
	}

	// Cut off, the edge can't hear of the write below nor acknowledge it: the pool end waits
	// AckTimeout before the write's answer goes out, and by then the edge serves nothing from
	// its cache, although its connection looks alive to it for seconds more (the idle timeout).
	part.cut.Store(true)
	if took := write(t, writer, "users"); took < ack {
		t.Errorf("the write was answered after %v, before the cut-off edge's AckTimeout (%v)", took, ack)
	}
	if edge.CacheCurrent() {
		t.Error("the cut-off edge still serves its cache once a write it never heard of is answered")
	}
	if !edge.Alive() {
		t.Log("the edge noticed its connection was gone already (the test wants the window before that)")
	}

	// Back on the network, the edge reconnects (the pool end closed the old connection), drops
	// what it cached and gets a lease again.
	part.cut.Store(false)
	if !within(15*time.Second, edge.CacheCurrent) {
		t.Error("the edge never got its lease back after the partition healed")
	}
}
