package mysqlpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// connKey is what an origin connection was opened with that shapes its answers: the
// format-relevant capability flags (low 32 bits) and the handshake collation (above). A session
// only uses connections whose key is its own.
type connKey uint64

// formatCaps are the client flags that change what the origin accepts or how it answers.
const formatCaps = mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_LOCAL_FILES |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_QUERY_ATTRIBUTES

// optionalCaps are the formatCaps go-mysql leaves off unless asked; the rest it sets by default.
var optionalCaps = []uint32{mysql.CLIENT_FOUND_ROWS, mysql.CLIENT_IGNORE_SPACE, mysql.CLIENT_LOCAL_FILES,
	mysql.CLIENT_MULTI_STATEMENTS, mysql.CLIENT_MULTI_RESULTS, mysql.CLIENT_PS_MULTI_RESULTS,
	mysql.CLIENT_SESSION_TRACK}

func makeKey(caps uint32, collation uint8) connKey {
	return connKey(caps&formatCaps) | connKey(collation)<<32
}

// keyExtMetadata marks a key whose connections negotiated MariaDB's
// MARIADB_CLIENT_EXTENDED_METADATA: their column definitions carry extended type names.
const keyExtMetadata connKey = 1 << 40

func (k connKey) caps() uint32      { return uint32(k) }
func (k connKey) collation() uint8  { return uint8(k >> 32) }
func (k connKey) extMetadata() bool { return k&keyExtMetadata != 0 }

// extMetadata is MARIADB_CLIENT_EXTENDED_METADATA in MariaDB's second capability word.
const extMetadata uint32 = 1 << 3

// originConn is one connection to the origin, owned by the pool while idle and by one session
// while leased. After the handshake the pool speaks raw packets on it.
type originConn struct {
	nc   net.Conn
	peer *pool.Peer // peeks at nc's socket while idle
	r    *bufio.Reader
	hdr  [4]byte // readPacket's, kept here so that reading allocates nothing
	id   uint32  // the origin's connection (thread) id, for KILL QUERY
	tls  bool
	// deprecateEOF says whether the origin took CLIENT_DEPRECATE_EOF (go-mysql's server, say,
	// does not): how it ends column definitions and rows.
	deprecateEOF bool
	key          connKey

	created   time.Time
	idleSince time.Time
	broken    bool             // failed in use: never hand out again
	retire    bool             // holds state nobody may inherit: close on release
	cred      *pool.Credential // what it was opened with, when Config.Credentials is set
	uncount   func()           // uncounts it from cred when it closes
	home      *Pool            // the pool that dialled it: a session may lease from its replica pool

	status uint16 // server status flags after its last answer
	db     string // current database
	state  string // fingerprint of the session settings applied ("" for none)
	dirty  bool   // may hold session state the pool cannot describe: reset before reuse
	owed   int    // answers to commands the pool sent on release, to read before the next use

	// prepared maps database and statement text to the origin's statement on this connection.
	prepared map[string]*originStmt
	lastUse  uint64
	sweptGen uint64 // stmtRefs generation of the last sweep
	// diagSession ran the last command that left diagnostics on the connection (an error or
	// warnings, for SHOW WARNINGS); a later statement that uses no table leaves them in place,
	// whoever runs it. Nil: none are known to be there.
	diagSession *Session
}

// originStmt is a statement prepared on one origin connection.
type originStmt struct {
	id    uint32
	bound *stmt // the session statement whose parameter types the origin holds, if any
	// boundGen is bound's typesGen when they were sent: its types since may be others
	// (an execute the edge or the pool end's cache answered).
	boundGen uint64
	lastUse  uint64
}

// maxPrepared bounds the statements kept prepared on one connection; the least recently used
// is closed past it.
const maxPrepared = 256

// tlsMode is the URL's tls parameter.
type tlsMode uint8

const (
	tlsOff tlsMode = iota
	tlsVerify
	tlsSkipVerify
	tlsPreferred
)

// dialConfig is the origin URL, parsed.
type dialConfig struct {
	addr, user, password, db string
	tls                      tlsMode
	dial                     func(ctx context.Context, network, addr string) (net.Conn, error)
	creds                    pool.CredentialSource // when set, the user and password instead of the URL's
	role                     *role                 // when set, the pool's connections log in as this role (roles.go)
}

// dial opens an origin connection, logs in (login.go) as the URL's user, a credential's or
// the pool's role, and keeps the socket for raw packets. With rel set it first reads the
// relations whose rows change together into it (readRelated).
func dial(ctx context.Context, dc *dialConfig, key connKey, rel *link.Related) (*originConn, mysqlwire.Handshake, error) {
	if dc.role != nil {
		return dc.role.dial(ctx, dc, key, rel)
	}
	if dc.creds == nil {
		return dialAs(ctx, dc, account{user: dc.user, password: dc.password}, key, rel)
	}
	cred, release, err := dc.creds.Take(ctx)
	if err != nil {
		return nil, mysqlwire.Handshake{}, err
	}
	c, h, err := dialAs(ctx, dc, account{user: cred.User, password: cred.Password}, key, rel)
	if err != nil {
		release()
		return nil, mysqlwire.Handshake{}, err
	}
	c.cred, c.uncount = cred, release
	return c, h, nil
}

// dialAs is dial as acc.
func dialAs(ctx context.Context, dc *dialConfig, acc account, key connKey, rel *link.Related) (*originConn, mysqlwire.Handshake, error) {
	nc, err := dc.dial(ctx, "tcp", dc.addr)
	if err != nil {
		return nil, mysqlwire.Handshake{}, err
	}
	lc, h, err := login(ctx, nc, dc, acc, key)
	if err != nil {
		nc.Close()
		return nil, h, err
	}
	now := time.Now()
	_, isTLS := lc.(*tls.Conn)
	c := &originConn{
		nc:           lc,
		peer:         pool.NewPeer(lc),
		r:            bufio.NewReaderSize(lc, 32<<10),
		id:           h.ConnID,
		tls:          isTLS,
		deprecateEOF: key.caps()&h.Capabilities&mysql.CLIENT_DEPRECATE_EOF != 0,
		key:          key,
		created:      now,
		idleSince:    now,
		db:           dc.db,
		prepared:     make(map[string]*originStmt),
	}
	if rel != nil {
		if *rel, err = readRelated(c); err != nil {
			lc.Close()
			return nil, h, err
		}
	}
	c.status = h.Status | statusAutocommit
	return c, h, nil
}

// readPacket appends the next physical packet, header included, to dst and returns it and the
// payload's offset in it.
func (c *originConn) readPacket(dst []byte) ([]byte, int, error) {
	h := c.hdr[:]
	if _, err := io.ReadFull(c.r, h); err != nil {
		return dst, 0, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	at := len(dst)
	dst = slices.Grow(dst, 4+n)
	dst = append(dst, h...)
	dst = dst[:at+4+n]
	if _, err := io.ReadFull(c.r, dst[at+4:]); err != nil {
		return dst[:at], 0, err
	}
	return dst, at + 4, nil
}

// readResponse reads one whole response of the given kind for the pool's own use. It returns
// the parser's verdict and the first packet's payload when the response failed (the ERR).
func (c *originConn) readResponse(p *parser, kind respKind, buf []byte) ([]byte, error) {
	p.reset(kind, c.deprecateEOF)
	for !p.done() {
		var at int
		var err error
		buf, at, err = c.readPacket(buf[:0])
		if err != nil {
			c.broken = true
			return buf, err
		}
		if err := p.feed(buf[at:]); err != nil {
			c.broken = true
			return buf, err
		}
		if p.infile {
			c.broken = true
			return buf, errMalformed
		}
	}
	if p.hasStatus {
		c.status = p.status
	}
	return buf[min(4, len(buf)):], nil
}

func (c *originConn) write(b []byte) error {
	if _, err := c.nc.Write(b); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// drain reads the answers owed for commands sent on release.
func (c *originConn) drain(buf []byte) error {
	var p parser
	for ; c.owed > 0; c.owed-- {
		if _, err := c.readResponse(&p, rOne, buf); err != nil {
			return err
		}
		if p.failed {
			c.broken = true
			return errors.New("mysqlpool: resetting the connection failed")
		}
	}
	return nil
}

// sendReset writes COM_RESET_CONNECTION without waiting: the next user of the connection reads
// the answer (drain). The origin keeps the current database; c.db still says which it is.
func (c *originConn) sendReset() {
	c.owed++
	c.state, c.dirty = "", false
	clear(c.prepared)
	c.status = statusAutocommit
	c.write(appendCommand(nil, mysql.COM_RESET_CONNECTION, nil))
}

// SlotKey is the key the connection was opened with.
func (c *originConn) SlotKey() connKey { return c.key }

// Created is when the connection was dialled.
func (c *originConn) Created() time.Time { return c.created }

// IdleSince is when the connection was last released to the idle list.
func (c *originConn) IdleSince() time.Time { return c.idleSince }

// SetIdleSince records when the connection was released to the idle list.
func (c *originConn) SetIdleSince(t time.Time) { c.idleSince = t }

// Broken says the connection failed in use.
func (c *originConn) Broken() bool { return c.broken }

// Retired says the connection holds state nobody may inherit, or was opened with a credential
// since replaced.
func (c *originConn) Retired() bool { return c.retire || c.cred != nil && c.cred.IsRetired() }

// Dead reports that the origin closed the idle connection or sent something unasked on it
// (MySQL 8's ERR before closing). While the answer to a reset sent at release is owed, a byte
// waiting is that answer, so only a close could tell; the next user reads the answer (sync)
// and drops the connection should that fail.
func (c *originConn) Dead() bool {
	return c.owed == 0 && (c.r.Buffered() > 0 || c.peer.Closed())
}

// Close ends the connection with COM_QUIT.
func (c *originConn) Close() {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(appendCommand(nil, mysql.COM_QUIT, nil))
	c.nc.Close()
	if c.uncount != nil {
		c.uncount()
	}
}

// kill runs KILL QUERY for this connection's thread on a new connection of its own.
func (c *originConn) kill(ctx context.Context, dc *dialConfig) error {
	kc, _, err := dial(ctx, dc, makeKey(0, 0), nil)
	if err != nil {
		return fmt.Errorf("mysqlpool: cancel: %w", err)
	}
	defer kc.Close()
	if dl, ok := ctx.Deadline(); ok {
		kc.nc.SetDeadline(dl)
	}
	if err := kc.write(appendCommand(nil, mysql.COM_QUERY, []byte("KILL QUERY "+strconv.FormatUint(uint64(c.id), 10)))); err != nil {
		return fmt.Errorf("mysqlpool: cancel: %w", err)
	}
	var p parser
	if _, err := kc.readResponse(&p, rQuery, nil); err != nil {
		return fmt.Errorf("mysqlpool: cancel: %w", err)
	}
	return nil
}
