package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"time"
)

// RelayConfig says what a Relay forwards and how much latency it adds.
type RelayConfig struct {
	// Listen is the address to accept on; empty means 127.0.0.1:0, a free loopback port
	// (Relay.Addr tells which).
	Listen string
	// To is the address everything is forwarded to. Required.
	To string
	// RTT is the round-trip time the relay adds: each direction is delayed by RTT/2, never
	// less and a few tens of microseconds more (BenchmarkRelayAddedDelay: a relayed round trip
	// comes back 0.2-0.3 ms late in all, waking the processes at both ends included). Zero
	// forwards without delay. For TCP, a new connection also pays one RTT for the handshake
	// a real WAN would cost, before its first byte reaches To.
	RTT time.Duration
	// UDP relays datagrams instead of TCP connections: each client source address gets its
	// own socket to To, so To sees one peer per client.
	UDP bool
	// Loss is the probability, in [0, 1), that a datagram is dropped, in each direction
	// independently; zero drops none. UDP only.
	Loss float64
	// Logger receives one debug line per connection or UDP flow; nil discards.
	Logger *slog.Logger
}

// Relay is a running WAN simulator; see StartRelay.
type Relay struct {
	cfg  RelayConfig
	half time.Duration
	log  *slog.Logger

	ctx    context.Context // ends when the relay closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept or read loop, and every connection or flow
	addr   string

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{} // open TCP connections or UDP flow sockets, closed by Close
	tcpLn  net.Listener
	udpLn  *net.UDPConn
	once   sync.Once
}

// StartRelay listens on cfg.Listen and forwards to cfg.To, adding cfg.RTT, until ctx ends or
// Close is called. It returns once the relay accepts connections or datagrams.
func StartRelay(ctx context.Context, cfg RelayConfig) (*Relay, error) {
	if cfg.To == "" {
		return nil, errors.New("relay: no target address")
	}
	if cfg.RTT < 0 {
		return nil, fmt.Errorf("relay: negative RTT %v", cfg.RTT)
	}
	if cfg.Loss < 0 || cfg.Loss >= 1 {
		return nil, fmt.Errorf("relay: loss %v is not in [0, 1)", cfg.Loss)
	}
	if cfg.Loss > 0 && !cfg.UDP {
		return nil, errors.New("relay: loss applies to UDP only")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, half: cfg.RTT / 2, log: log, conns: map[io.Closer]struct{}{}}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.UDP {
		la, err := net.ResolveUDPAddr("udp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		if _, err := net.ResolveUDPAddr("udp", cfg.To); err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		ln, err := net.ListenUDP("udp", la)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		r.udpLn, r.addr = ln, ln.LocalAddr().String()
		r.wg.Add(1)
		go r.serveUDP()
	} else {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		r.tcpLn, r.addr = ln, ln.Addr().String()
		r.wg.Add(1)
		go r.serveTCP()
	}
	// The caller's context ends the relay as Close does.
	go func() {
		select {
		case <-ctx.Done():
			r.Close()
		case <-r.ctx.Done():
		}
	}()
	return r, nil
}

// Addr is the address the relay listens on, host:port.
func (r *Relay) Addr() string { return r.addr }

// Close stops accepting, closes every relayed connection and flow, and waits for the
// relay's goroutines. Data still delayed inside the relay is dropped.
func (r *Relay) Close() error {
	r.once.Do(func() {
		r.cancel()
		r.mu.Lock()
		r.closed = true
		if r.tcpLn != nil {
			r.tcpLn.Close()
		}
		if r.udpLn != nil {
			r.udpLn.Close()
		}
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
	return nil
}

// track registers c to be closed by Close; false if the relay is already closing (c is
// then closed here).
func (r *Relay) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c io.Closer) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// sleepUntil waits until t or the relay's end; false if the relay ended.
//
// A Go timer alone would release data late: the runtime's netpoller waits in whole
// milliseconds on Linux, so a timer fires up to 1 ms after its time, about 0.4 ms per
// round trip on average at an RTT of 50 ms (BenchmarkRelayAddedDelay), which a path of 8 round
// trips pays 8 times and one of 1 once. So a timer, which the relay's end interrupts, waits
// until timerSlack before t, and preciseSleep the rest.
func (r *Relay) sleepUntil(timer *time.Timer, t time.Time) bool {
	if d := time.Until(t) - timerSlack; d > 0 {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-r.ctx.Done():
			timer.Stop()
			return false
		}
	}
	preciseSleep(t)
	return r.ctx.Err() == nil
}

// timerSlack is more than a Go timer may fire late.
const timerSlack = 2 * time.Millisecond

// spinFor is how long before its time preciseSleep stops sleeping and yields in a loop:
// longer than the kernel takes to wake a sleeping thread on these machines (timer slack, 50 µs,
// and the wake-up itself), so that the relay, which stands for a wire, adds no wake-up of its
// own. It costs at most that much CPU per delayed chunk or datagram.
const spinFor = 150 * time.Microsecond

// preciseSleep returns at t, not before and within microseconds after when a CPU is free:
// it sleeps in the kernel (osSleep) until spinFor before t, then yields until t. It does not
// watch the relay's end: sleepUntil calls it for the last timerSlack only.
func preciseSleep(t time.Time) {
	if d := time.Until(t) - spinFor; d > 0 {
		osSleep(d)
	}
	for time.Now().Before(t) {
		runtime.Gosched()
	}
}

// --- TCP ---

// tcpChunkSize is the most one read takes from a socket; a chunk is released whole.
const tcpChunkSize = 32 << 10

// tcpQueueChunks bounds each direction's queue of delayed chunks. Backpressure: the reader
// fills it as the sender writes, the writer empties it as chunks fall due; when it is full
// the reader stops reading and TCP flow control slows the sender. 256 chunks of up to 32 KiB
// in flight for RTT/2 sustain hundreds of MB/s at WAN-like RTTs, more than a benchmark here
// moves.
const tcpQueueChunks = 256

var chunkPool = sync.Pool{New: func() any { b := make([]byte, tcpChunkSize); return &b }}

// chunk is data read at some time, to be written at due; buf nil marks the end of the stream.
type chunk struct {
	due time.Time
	buf *[]byte
	n   int
}

func (r *Relay) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.tcpLn.Accept()
		if err != nil {
			if r.ctx.Err() == nil {
				r.log.Warn("relay: accept failed", "err", err)
			}
			return
		}
		if !r.track(c) {
			return
		}
		r.wg.Add(1)
		go r.relayTCP(c)
	}
}

// relayTCP serves one client connection: it waits one RTT (the TCP handshake across the
// simulated WAN), dials the target and pipes both ways with RTT/2 each.
func (r *Relay) relayTCP(client net.Conn) {
	defer r.wg.Done()
	defer r.untrack(client)
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	if !r.sleepUntil(timer, start.Add(r.cfg.RTT)) {
		return
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	target, err := d.DialContext(r.ctx, "tcp", r.cfg.To)
	if err != nil {
		r.log.Debug("relay: dial failed", "to", r.cfg.To, "err", err)
		return
	}
	if !r.track(target) {
		return
	}
	defer r.untrack(target)
	r.log.Debug("relay: connection", "client", client.RemoteAddr(), "to", r.cfg.To)

	var wg sync.WaitGroup
	wg.Add(2)
	// Client to target. Target to client starts no earlier than two RTTs after the client's
	// connect: a real server's accept returns once the handshake's last ACK crossed the WAN,
	// so what it sends first (a MySQL greeting) reaches the client after two round trips.
	go func() { defer wg.Done(); r.pipe(target, client, time.Time{}) }()
	go func() { defer wg.Done(); r.pipe(client, target, start.Add(2*r.cfg.RTT)) }()
	wg.Wait()
	r.log.Debug("relay: connection closed", "client", client.RemoteAddr(), "duration", time.Since(start))
}

// pipe copies src to dst, each chunk released RTT/2 after it was read and never before
// notBefore, in order. A reader goroutine stamps chunks and the writer (this goroutine)
// sleeps until each falls due, so delay adds latency without throttling throughput. At EOF
// it half-closes dst after the same delay; on an error it closes both sides.
func (r *Relay) pipe(dst, src net.Conn, notBefore time.Time) {
	q := make(chan chunk, tcpQueueChunks)
	done := make(chan struct{})
	go func() {
		defer close(q)
		for {
			bp := chunkPool.Get().(*[]byte)
			n, err := src.Read(*bp)
			now := time.Now()
			due := now.Add(r.half)
			if due.Before(notBefore) {
				due = notBefore
			}
			if n > 0 {
				select {
				case q <- chunk{due: due, buf: bp, n: n}:
				case <-done:
					chunkPool.Put(bp)
					return
				}
			} else {
				chunkPool.Put(bp)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					select {
					case q <- chunk{due: due}:
					case <-done:
					}
				}
				return
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer func() {
		close(done)
		for c := range q { // let the reader finish, give its buffers back
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
		}
	}()
	for c := range q {
		if !r.sleepUntil(timer, c.due) {
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
			return
		}
		if c.buf == nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
		_, err := dst.Write((*c.buf)[:c.n])
		chunkPool.Put(c.buf)
		if err != nil {
			// The other side is gone: unblock the reader and the other direction.
			src.Close()
			dst.Close()
			return
		}
	}
	// The reader stopped on an error other than EOF (a reset, or Close): pass it on.
	dst.Close()
}

// --- UDP ---

// udpIdleTimeout ends a UDP flow that carried nothing either way for this long; QUIC's
// keep-alives are far more frequent.
const udpIdleTimeout = 2 * time.Minute

// udpQueueDatagrams bounds each direction's queue of delayed datagrams per flow. Backpressure
// is UDP's: when a queue is full the datagram is dropped, as a congested router would.
const udpQueueDatagrams = 4096

// datagram is a packet read at some time, to be sent at due.
type datagram struct {
	due time.Time
	b   []byte
}

// udpFlow is one client source address and the socket that carries its datagrams to To.
type udpFlow struct {
	client *net.UDPAddr
	conn   *net.UDPConn // connected to To
	up     chan datagram
	last   time.Time // guarded by Relay.mu
}

func (r *Relay) serveUDP() {
	defer r.wg.Done()
	to, _ := net.ResolveUDPAddr("udp", r.cfg.To) // checked by StartRelay
	flows := map[string]*udpFlow{}
	var fmu sync.Mutex // flows: the read loop adds, a flow's own goroutine removes
	buf := make([]byte, 64<<10)
	for {
		n, client, err := r.udpLn.ReadFromUDP(buf)
		if err != nil {
			if r.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("relay: udp read failed", "err", err)
				continue
			}
			return
		}
		now := time.Now()
		key := client.String()
		fmu.Lock()
		f := flows[key]
		if f == nil {
			conn, err := net.DialUDP("udp", nil, to)
			if err != nil {
				fmu.Unlock()
				r.log.Debug("relay: udp dial failed", "to", r.cfg.To, "err", err)
				continue
			}
			if !r.track(conn) {
				fmu.Unlock()
				return
			}
			f = &udpFlow{client: client, conn: conn, up: make(chan datagram, udpQueueDatagrams), last: now}
			flows[key] = f
			r.log.Debug("relay: udp flow", "client", key, "to", r.cfg.To)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.runFlow(f)
				fmu.Lock()
				delete(flows, key)
				fmu.Unlock()
				r.untrack(conn)
			}()
		}
		fmu.Unlock()
		r.touch(f, now)
		if r.drop() {
			continue
		}
		select {
		case f.up <- datagram{due: now.Add(r.half), b: append([]byte(nil), buf[:n]...)}:
		default: // queue full: dropped
		}
	}
}

func (r *Relay) touch(f *udpFlow, now time.Time) {
	r.mu.Lock()
	f.last = now
	r.mu.Unlock()
}

func (r *Relay) drop() bool { return r.cfg.Loss > 0 && rand.Float64() < r.cfg.Loss }

// runFlow carries one flow until it is idle for udpIdleTimeout or the relay closes: a
// writer delays client datagrams to To, a reader takes To's answers and a second writer
// delays them back to the client from the listening socket.
func (r *Relay) runFlow(f *udpFlow) {
	down := make(chan datagram, udpQueueDatagrams)
	stop := make(chan struct{}) // closed when the flow ends; stops the up writer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // up: client -> To
		defer wg.Done()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case d := <-f.up:
				if !r.sleepUntil(timer, d.due) {
					return
				}
				f.conn.Write(d.b) // a refused or lost datagram is UDP's business
			case <-stop:
				return
			case <-r.ctx.Done():
				return
			}
		}
	}()
	go func() { // down: To -> client, released here
		defer wg.Done()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for d := range down {
			if !r.sleepUntil(timer, d.due) {
				for range down {
				}
				return
			}
			r.udpLn.WriteToUDP(d.b, f.client)
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		f.conn.SetReadDeadline(time.Now().Add(udpIdleTimeout / 4))
		n, err := f.conn.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && r.ctx.Err() == nil {
				r.mu.Lock()
				idle := now.Sub(f.last)
				r.mu.Unlock()
				if idle < udpIdleTimeout {
					continue
				}
				r.log.Debug("relay: udp flow idle", "client", f.client.String())
			} else if r.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				// ICMP port unreachable from To shows up here; the flow lives on.
				continue
			}
			break
		}
		r.touch(f, now)
		if r.drop() {
			continue
		}
		select {
		case down <- datagram{due: now.Add(r.half), b: append([]byte(nil), buf[:n]...)}:
		default:
		}
	}
	close(stop)
	close(down)
	wg.Wait()
}
