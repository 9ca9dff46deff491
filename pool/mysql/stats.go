package mysqlpool

import (
	"context"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
)

// OriginInfo returns where the origin is, without its password (host "" for an in-process one).
func (p *Pool) OriginInfo() pool.OriginInfo {
	h, port := pool.SplitHostPort(p.dc.addr)
	oi := pool.OriginInfo{Host: h, Port: port, Database: p.dc.db, User: p.dc.user}
	if p.cfg.Dial != nil {
		oi.Host = ""
	}
	return oi
}

// Servers describes the pool's origin connections.
func (p *Pool) Servers() []pool.ServerConn { return p.slots.Servers() }

// MaxConns returns the pool's connection limit.
func (p *Pool) MaxConns() int { return p.slots.MaxConns() }

// Pause holds new transactions and waits for those in flight (pool.Slots.Pause).
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
