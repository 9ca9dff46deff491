package bench

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// slack is how much later than its nominal delay the median relayed round trip may arrive
// on this shared 2-core machine and still pass: the tests check the delay is added, not its
// jitter (single round trips take 50 ms extra now and then when the machine is loaded).
const slack = 40 * time.Millisecond

// roundTrips checks that every one of d is at least rtt and their median at most rtt+slack.
func roundTrips(t *testing.T, what string, d []time.Duration, rtt time.Duration) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(d))
	if sorted[0] < rtt || sorted[len(sorted)/2] > rtt+slack {
		t.Errorf("%s took %v, want each at least %v and the median at most %v", what, d, rtt, rtt+slack)
	}
}

// tcpEcho serves TCP echo on a loopback port until the test ends.
func tcpEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// udpEcho answers every datagram with itself until the test ends.
func udpEcho(t testing.TB) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], from)
		}
	}()
	return c.LocalAddr().String()
}

func startRelay(t testing.TB, cfg RelayConfig) *Relay {
	t.Helper()
	r, err := StartRelay(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func within(t *testing.T, what string, got, min, max time.Duration) {
	t.Helper()
	if got < min || got > max {
		t.Errorf("%s took %v, want between %v and %v", what, got, min, max)
	}
}

func TestTCPRelayAddsTheRTTToEachRoundTripAndOneForTheHandshake(t *testing.T) {
	const rtt = 30 * time.Millisecond
	r := startRelay(t, RelayConfig{To: tcpEcho(t), RTT: rtt})

	start := time.Now()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 5)
	roundTrip := func(msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Fatalf("echo %q, want %q", buf, msg)
		}
	}
	roundTrip("hello")
	within(t, "connect and first echo", time.Since(start), 2*rtt, 2*rtt+3*slack)
	var d []time.Duration
	for _, msg := range []string{"one..", "two..", "three", "four.", "five."} {
		start := time.Now()
		roundTrip(msg)
		d = append(d, time.Since(start))
	}
	roundTrips(t, "echoes", d, rtt)
}

func TestTCPRelayKeepsOrderAndDoesNotThrottleThroughput(t *testing.T) {
	const rtt = 40 * time.Millisecond
	r := startRelay(t, RelayConfig{To: tcpEcho(t), RTT: rtt})
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 8 MiB in 1 KiB writes: were chunks delayed one after another, this would take
	// thousands of RTTs (8,192 x 40 ms, over 5 minutes); delayed as a stream it takes about two
	// RTTs plus the copying, which under -race on a loaded 2-core machine took 15 s once: the
	// bound tells the two apart without timing the copy.
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7 / 5)
	}
	start := time.Now()
	go func() {
		for b := want; len(b) > 0; b = b[1024:] {
			if _, err := c.Write(b[:1024]); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes, not the %d sent in order", len(got), len(want))
	}
	within(t, "8 MiB echo", elapsed, 2*rtt, time.Minute)
}

func TestUDPRelayAddsTheRTTToEachRoundTrip(t *testing.T) {
	const rtt = 30 * time.Millisecond
	r := startRelay(t, RelayConfig{To: udpEcho(t), RTT: rtt, UDP: true})
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	var ds []time.Duration
	for _, msg := range []string{"one", "two", "three", "four", "five"} {
		start := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != msg {
			t.Fatalf("echo %q, want %q", buf[:n], msg)
		}
		ds = append(ds, time.Since(start))
	}
	roundTrips(t, "datagram echoes", ds, rtt)
}

func TestUDPRelayGivesEachClientItsOwnFlow(t *testing.T) {
	r := startRelay(t, RelayConfig{To: udpEcho(t), RTT: 10 * time.Millisecond, UDP: true})
	var clients [3]net.Conn
	for i := range clients {
		c, err := net.Dial("udp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
		c.Write([]byte{byte('a' + i)})
	}
	for i, c := range clients {
		buf := make([]byte, 8)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil || n != 1 || buf[0] != byte('a'+i) {
			t.Fatalf("client %d got %q, %v; want its own datagram back", i, buf[:n], err)
		}
	}
}

func TestUDPRelayDropsAboutTheLossRateEachWay(t *testing.T) {
	// 50% each way: about a quarter of the echoes come back.
	r := startRelay(t, RelayConfig{To: udpEcho(t), UDP: true, Loss: 0.5})
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 400
	for i := range sent {
		c.Write([]byte{byte(i)})
		if i%50 == 49 {
			time.Sleep(time.Millisecond) // stay under the socket buffers
		}
	}
	got := 0
	buf := make([]byte, 8)
	for {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(buf); err != nil {
			break
		}
		got++
	}
	if got < sent/10 || got > sent*45/100 {
		t.Errorf("%d of %d datagrams came back, want about a quarter", got, sent)
	}
}

func TestRelayCloseEndsOpenConnections(t *testing.T) {
	r, err := StartRelay(t.Context(), RelayConfig{To: tcpEcho(t)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	r.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(b); err == nil {
		t.Fatal("read after Close succeeded; want the connection closed")
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Error("dial after Close succeeded")
	}
	r.Close() // twice is fine
}

func TestRelayStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, err := StartRelay(ctx, RelayConfig{To: udpEcho(t), UDP: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after its context ended")
	}
}

func TestStartRelayRejectsBadConfigs(t *testing.T) {
	for name, cfg := range map[string]RelayConfig{
		"no target":        {},
		"a negative RTT":   {To: "127.0.0.1:1", RTT: -time.Millisecond},
		"loss of 1":        {To: "127.0.0.1:1", UDP: true, Loss: 1},
		"loss on TCP":      {To: "127.0.0.1:1", Loss: 0.1},
		"a bad UDP target": {To: "nowhere", UDP: true},
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := StartRelay(t.Context(), cfg); err == nil {
				r.Close()
				t.Fatal("StartRelay accepted it")
			}
		})
	}
}

// BenchmarkRelayTCP measures what the relay costs a bulk TCP stream with no added delay:
// 1 MiB per operation through an echo server and back.
func BenchmarkRelayTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	r, err := StartRelay(b.Context(), RelayConfig{To: ln.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 1<<20)
	got := make([]byte, len(msg))
	b.SetBytes(int64(2 * len(msg)))
	for b.Loop() {
		go c.Write(msg)
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayAddedDelay measures how much later than its RTT a small round trip through
// the relay comes back (an echo server behind it, one message at a time): the relay's own
// slack, which every relayed round trip of `bench latency` pays, direct and through Slipstream
// alike. It reports the median and the 90th percentile of the excess in microseconds; it
// includes waking the echo server and the relay's own goroutines, about 40 µs with no delay.
//
//	go test ./bench -run '^$' -bench RelayAddedDelay -benchtime 100x
func BenchmarkRelayAddedDelay(b *testing.B) {
	const rtt = 50 * time.Millisecond // bench latency's
	for _, network := range []string{"tcp", "udp"} {
		b.Run(network, func(b *testing.B) {
			cfg := RelayConfig{To: tcpEcho(b), RTT: rtt}
			if network == "udp" {
				cfg = RelayConfig{To: udpEcho(b), RTT: rtt, UDP: true}
			}
			r := startRelay(b, cfg)
			c, err := net.Dial(network, r.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, got := []byte("ping"), make([]byte, 4)
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
			roundTrip() // the TCP handshake's extra RTT is not what this measures
			var excess []time.Duration
			for b.Loop() {
				start := time.Now()
				roundTrip()
				excess = append(excess, time.Since(start)-rtt)
			}
			slices.Sort(excess)
			b.ReportMetric(float64(excess[len(excess)/2].Microseconds()), "µs-late-p50")
			b.ReportMetric(float64(excess[len(excess)*9/10].Microseconds()), "µs-late-p90")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func TestPreciseSleepNeverReturnsEarly(t *testing.T) {
	for _, d := range []time.Duration{0, 10 * time.Microsecond, 100 * time.Microsecond, 900 * time.Microsecond,
		1500 * time.Microsecond, 2 * time.Millisecond} {
		for range 20 {
			at := time.Now().Add(d)
			preciseSleep(at)
			if now := time.Now(); now.Before(at) {
				t.Fatalf("preciseSleep(now+%v) returned %v early", d, at.Sub(now))
			}
		}
	}
}
