package pool

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// maxOriginMessage bounds a message from the origin; PostgreSQL's own limit is 1 GiB.
const maxOriginMessage = 1 << 30

// Conn is one connection to the origin, owned by the pool while idle and by one session while
// leased.
type Conn struct {
	nc      net.Conn
	peer    *Peer // peeks at nc's socket while idle
	r       *pgwire.Reader
	pid     uint32
	secret  []byte
	network string // where cancel requests go
	address string
	dialer  pgconn.DialFunc

	created   time.Time
	idleSince time.Time
	broken    bool        // failed in use: never hand out again
	retire    bool        // holds state of a session that ended: close on release
	cred      *Credential // what it was opened with, when Config.Credentials is set
	uncount   func()      // uncounts it from cred when it closes

	// prepared holds the server-side statement names this connection has parsed.
	prepared map[string]struct{}
	// state is the key of the session settings last applied here ("" for the connection's own).
	state string
	// unnamedBy and unnamedGen say whose Parse of the unnamed statement the connection holds.
	unnamedBy  *Session
	unnamedGen uint64
}

// volatilitySQL reads, for each function name, its most volatile overload ('v' > 's' > 'i').
const volatilitySQL = "select proname, max(provolatile) from pg_catalog.pg_proc group by proname"

// catalog is what the cache needs of the origin's catalog.
type catalog struct {
	volatility map[string]byte // function name -> its most volatile pg_proc.provolatile
	related    link.Related
}

// dial opens an origin connection with pgconn (TLS and authentication as the URL says) and
// takes over its socket for raw forwarding. With cat set it first reads the origin's
// function volatilities and related relations into it.
func dial(ctx context.Context, cfg *pgconn.Config, cat *catalog) (*Conn, map[string]string, error) {
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if cat != nil {
		cat.volatility = make(map[string]byte)
		rr := pc.ExecParams(ctx, volatilitySQL, nil, nil, nil, nil)
		for rr.NextRow() {
			if v := rr.Values(); len(v) == 2 && len(v[1]) == 1 {
				cat.volatility[string(v[0])] = v[1][0]
			}
		}
		if _, err := rr.Close(); err != nil {
			clear(cat.volatility) // an origin without pg_proc (D1): every function counts as volatile
		}
		cat.related = readRelated(ctx, pc)
	}
	// pgconn may still have a background read in flight or bytes buffered; either would steal
	// the first answer of the connection's first lease.
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, nil, err
	}
	network, address := pgconn.NetworkAddress(hc.Config.Host, hc.Config.Port)
	now := time.Now()
	c := &Conn{
		nc:       hc.Conn,
		peer:     NewPeer(hc.Conn),
		r:        pgwire.NewReader(hc.Conn, maxOriginMessage),
		pid:      hc.PID,
		secret:   hc.SecretKey,
		network:  network,
		address:  address,
		dialer:   hc.Config.DialFunc,
		created:  now,
		prepared: make(map[string]struct{}),
	}
	return c, hc.ParameterStatuses, nil
}

// SlotKey is the key of every PostgreSQL connection: any session may use any connection.
func (c *Conn) SlotKey() struct{} { return struct{}{} }

// Created is when the connection was dialled.
func (c *Conn) Created() time.Time { return c.created }

// IdleSince is when the connection was last released to the idle list.
func (c *Conn) IdleSince() time.Time { return c.idleSince }

// SetIdleSince records when the connection was released to the idle list.
func (c *Conn) SetIdleSince(t time.Time) { c.idleSince = t }

// Broken says the connection failed in use.
func (c *Conn) Broken() bool { return c.broken }

// Retired says the connection holds state of a session that ended, or was opened with a
// credential since replaced.
func (c *Conn) Retired() bool { return c.retire || c.cred != nil && c.cred.IsRetired() }

// Dead reports that the origin closed the idle connection or said something on it unasked
// (a FATAL before closing): nothing is due from a connection nobody uses.
func (c *Conn) Dead() bool { return c.r.Buffered() > 0 || c.peer.Closed() }

// Close terminates the connection.
func (c *Conn) Close() {
	if c.nc != nil {
		// Terminate politely; the origin logs an unexpected EOF otherwise.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write([]byte{'X', 0, 0, 0, 4})
		c.nc.Close()
	}
	if c.uncount != nil {
		c.uncount()
	}
}

func (c *Conn) write(b []byte) error {
	_, err := c.nc.Write(b)
	if err != nil {
		c.broken = true
	}
	return err
}

// cancel asks the origin to cancel whatever this connection is running, the way libpq does: a
// CancelRequest on a new connection, then waiting for the origin to close it.
func (c *Conn) cancel(ctx context.Context) error {
	nc, err := c.dialer(ctx, c.network, c.address)
	if err != nil {
		return fmt.Errorf("pool: cancel: %w", err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req := make([]byte, 0, 12+len(c.secret))
	req = binary.BigEndian.AppendUint32(req, uint32(12+len(c.secret)))
	req = binary.BigEndian.AppendUint32(req, 80877102)
	req = binary.BigEndian.AppendUint32(req, c.pid)
	req = append(req, c.secret...)
	if _, err := nc.Write(req); err != nil {
		return fmt.Errorf("pool: cancel: %w", err)
	}
	_, _ = io.Copy(io.Discard, nc) // the origin closes once it has signalled the backend
	return nil
}
