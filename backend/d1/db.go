package d1

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// errClosed is returned once the DB is closed.
var errClosed = errors.New("d1: database is closed")

// DB is one D1 database: a SQLite file in WAL mode, served to any number of PostgreSQL protocol
// sessions at once, each on its own SQLite connection.
type DB struct {
	path    string
	version string                 // SQLite's
	name    atomic.Pointer[string] // SetName's

	// keeper holds the database open for the DB's lifetime, so the WAL index stays mapped
	// between sessions and the last session to leave doesn't checkpoint.
	keeper *conn

	ctx    context.Context // ends every session on Close
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup      // one count per running session
	sessions map[uint32]*session // by process ID, for CancelRequest
	nextPID  uint32
}

// Open opens the database file at path, creating it and its directory if missing, and puts it
// in WAL mode.
func Open(path string) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("d1: open %q: want a file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("d1: open: %w", err)
	}
	c, err := openConn(path)
	if err != nil {
		return nil, fmt.Errorf("d1: open %s: %w", path, err)
	}
	mode, err := c.queryText("PRAGMA journal_mode=WAL")
	if err != nil || mode != "wal" {
		c.close()
		if err == nil {
			err = fmt.Errorf("journal mode is %q", mode)
		}
		return nil, fmt.Errorf("d1: open %s: WAL: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &DB{
		path:     path,
		version:  c.version,
		keeper:   c,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[uint32]*session),
	}, nil
}

// Close ends every session, waits for them, and closes the database. It is safe to call twice.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.cancel()
	db.wg.Wait()
	db.keeper.close()
	return nil
}

// Dial returns the client end of an in-memory connection to a new session on db. Its signature
// is pgconn.DialFunc's, so a pgconn.Config whose DialFunc is db.Dial connects to the database
// as to any PostgreSQL.
func (db *DB) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return db.dialWith(ctx, db.serve)
}

// ServeConn runs one PostgreSQL protocol session on c until the client terminates, the
// connection breaks, ctx ends or the DB closes; it closes c. A clean end returns nil.
func (db *DB) ServeConn(ctx context.Context, c net.Conn) error {
	return db.serveWith(ctx, c, db.serve)
}

// dialWith returns the client end of an in-memory connection to a new session that serve runs
// (either protocol's), counted in until it ends.
func (db *DB) dialWith(ctx context.Context, serve func(context.Context, net.Conn) error) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !db.enter() {
		return nil, errClosed
	}
	client, server := net.Pipe()
	go func() {
		defer db.wg.Done()
		_ = serve(db.ctx, server) // the client sees any failure on its end
	}()
	return client, nil
}

// serveWith runs serve on c as one counted session, unless the DB is closed; it closes c.
func (db *DB) serveWith(ctx context.Context, c net.Conn, serve func(context.Context, net.Conn) error) error {
	if !db.enter() {
		c.Close()
		return errClosed
	}
	defer db.wg.Done()
	return serve(ctx, c)
}

// enter counts a session in, unless the DB is closed.
func (db *DB) enter() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return false
	}
	db.wg.Add(1)
	return true
}

// register gives s a process ID and a secret for CancelRequest.
func (db *DB) register(s *session) {
	var secret [4]byte
	_, _ = rand.Read(secret[:])
	db.mu.Lock()
	defer db.mu.Unlock()
	for {
		db.nextPID++
		if _, taken := db.sessions[db.nextPID]; !taken && db.nextPID != 0 {
			break
		}
	}
	s.pid = db.nextPID
	s.secret = binary.BigEndian.Uint32(secret[:])
	db.sessions[s.pid] = s
}

func (db *DB) unregister(s *session) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.sessions[s.pid] == s {
		delete(db.sessions, s.pid)
	}
}

// cancelQuery interrupts the statement running in the session with this key, if any.
func (db *DB) cancelQuery(pid uint32, secret []byte) {
	db.mu.Lock()
	s := db.sessions[pid]
	db.mu.Unlock()
	if s == nil || len(secret) != 4 {
		return
	}
	var want [4]byte
	binary.BigEndian.PutUint32(want[:], s.secret)
	if subtle.ConstantTimeCompare(want[:], secret) == 1 {
		s.c.interrupt()
	}
}

// queryText runs a statement and returns the first column of its first row as text.
func (c *conn) queryText(sql string) (string, error) {
	c.loaded = ""
	st, _, err := c.prepare(sql, 0, false)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", nil
	}
	defer st.finalize()
	row, err := st.step()
	if err != nil || !row {
		return "", err
	}
	return string(st.columnText(0)), nil
}
