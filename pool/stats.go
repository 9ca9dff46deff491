package pool

import (
	"context"
	"net"
	"strconv"
	"time"
)

// ServerConn describes one origin connection, for the admin console's SHOW SERVERS.
type ServerConn struct {
	// Idle says the connection waits in the pool; false: leased to a session (or dialling).
	Idle bool
	// Created is when it was dialled; IdleSince when it was last released (zero when leased:
	// the pool does not follow leased connections one by one).
	Created, IdleSince time.Time
}

// Servers returns the idle connections, then one entry per leased connection.
func (s *Slots[C, K]) Servers() []ServerConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServerConn, 0, s.total)
	for _, c := range s.idle {
		out = append(out, ServerConn{Idle: true, Created: c.Created(), IdleSince: c.IdleSince()})
	}
	for range s.total - len(s.idle) {
		out = append(out, ServerConn{})
	}
	return out
}

// MaxConns returns the pool's connection limit, which a reload may change (SetMaxConns).
func (s *Slots[C, K]) MaxConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.MaxConns
}

// OriginInfo is where a pool's origin is, without its password.
type OriginInfo struct {
	Host     string
	Port     int
	Database string
	User     string
}

// Origin returns where the origin is (host "" for an in-process one).
func (p *Pool) OriginInfo() OriginInfo {
	oi := OriginInfo{Host: p.connCfg.Host, Port: int(p.connCfg.Port), Database: p.connCfg.Database, User: p.connCfg.User}
	if p.cfg.Dial != nil {
		oi.Host = ""
	}
	return oi
}

// SplitHostPort splits addr into OriginInfo's host and port (0 when it has none).
func SplitHostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// Servers describes the pool's origin connections.
func (p *Pool) Servers() []ServerConn { return p.slots.Servers() }

// MaxConns returns the pool's connection limit.
func (p *Pool) MaxConns() int { return p.slots.MaxConns() }

// Pause holds new transactions and waits for those in flight (Slots.Pause).
func (p *Pool) Pause(ctx context.Context) error { return p.slots.Pause(ctx) }

// Resume lets held transactions go on.
func (p *Pool) Resume() { p.slots.Resume() }

// Paused reports whether the pool holds new transactions.
func (p *Pool) Paused() bool { return p.slots.Paused() }

// Reconnect closes the pool's connections as they become idle.
func (p *Pool) Reconnect() { p.slots.Reconnect() }

// WaitClose waits until the connections of before the last Reconnect are closed.
func (p *Pool) WaitClose(ctx context.Context) error { return p.slots.WaitClose(ctx) }

// Waited returns the time sessions have spent queued for an origin connection, all told.
func (p *Pool) Waited() time.Duration { return p.slots.Waited() }
