package kv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Limits on what a namespace stores, Workers KV's.
const (
	maxKeyLen      = 512
	maxValueLen    = 25 << 20
	maxMetadataLen = 1024
)

// listBytes bounds the value bytes one page of a listing holds; a page stops early past it, so a
// SELECT of large values streams instead of loading them all.
const listBytes = 8 << 20

// maxLazyDeletes bounds the expired keys one read deletes on its way.
const maxLazyDeletes = 100

// schema is the namespace's one table. expiration is in unix seconds; NULL never expires.
const schema = `CREATE TABLE IF NOT EXISTS kv (
	key TEXT PRIMARY KEY NOT NULL,
	value BLOB NOT NULL,
	metadata TEXT,
	expiration INTEGER
)`

// Namespace is one KV namespace: a SQLite file in WAL mode holding the kv table, served to any
// number of PostgreSQL protocol sessions and HTTP requests at once.
type Namespace struct {
	path string
	name atomic.Pointer[string] // SetName's
	db   *sql.DB

	getValue, getMeta, put, del, delExpired *sql.Stmt

	ctx    context.Context // ends every session on Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // one count per running session
}

// Open opens the namespace stored at path, creating the file, its directory and the kv table if
// missing.
func Open(path string) (*Namespace, error) {
	// The driver reads what follows '?' as options and a "file:" prefix as a URI.
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("kv: open %q: want a file path without ? or #", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("kv: open: %w", err)
	}
	// synchronous=FULL: a put returns only after the WAL is fsynced, so an acknowledged write
	// survives kill -9 and power loss. Writers wait for each other up to the busy timeout.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	db.SetMaxIdleConns(8)
	ns := &Namespace{path: path, db: db}
	if err := ns.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	ns.ctx, ns.cancel = context.WithCancel(context.Background())
	return ns, nil
}

func (ns *Namespace) init() error {
	ctx := context.Background()
	var mode string
	if err := ns.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if _, err := ns.db.ExecContext(ctx, schema); err != nil {
		return err
	}
	// A file made for something else (a D1 database, say) is refused rather than served as KV.
	rows, err := ns.db.QueryContext(ctx, "SELECT name FROM pragma_table_info('kv') ORDER BY cid")
	if err != nil {
		return err
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if strings.Join(cols, ",") != "key,value,metadata,expiration" {
		return fmt.Errorf("table kv has columns %v, want key, value, metadata, expiration", cols)
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&ns.getValue, "SELECT value, metadata, expiration FROM kv WHERE key = ?1"},
		{&ns.getMeta, "SELECT NULL, metadata, expiration FROM kv WHERE key = ?1"},
		{&ns.put, "INSERT INTO kv (key, value, metadata, expiration) VALUES (?1, ?2, ?3, ?4) " +
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration"},
		{&ns.del, "DELETE FROM kv WHERE key = ?1 RETURNING expiration"},
		{&ns.delExpired, "DELETE FROM kv WHERE key = ?1 AND expiration <= ?2"},
	} {
		if *p.st, err = ns.db.PrepareContext(ctx, p.sql); err != nil {
			return err
		}
	}
	return nil
}

// Close ends every session, waits for them, and closes the file. It is safe to call twice.
func (ns *Namespace) Close() error {
	ns.mu.Lock()
	if ns.closed {
		ns.mu.Unlock()
		return nil
	}
	ns.closed = true
	ns.mu.Unlock()
	ns.cancel()
	ns.wg.Wait()
	return ns.db.Close() // closes the prepared statements too
}

// enter counts a session or request in, unless the namespace is closed.
func (ns *Namespace) enter() bool {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return false
	}
	ns.wg.Add(1)
	return true
}

// errClosed is returned once the namespace is closed.
var errClosed = errors.New("kv: namespace is closed")

// entry is one key's record.
type entry struct {
	key        string
	value      []byte // nil when not read
	metadata   []byte // JSON text; nil for none
	expiration int64  // unix seconds
	expires    bool   // expiration is set
}

// expired reports whether e is past its expiration at now (unix seconds): a key expires at the
// second its expiration names.
func (e *entry) expired(now int64) bool { return e.expires && e.expiration <= now }

// get reads key's record; ok is false when there is none or it expired, which it then deletes.
func (ns *Namespace) get(ctx context.Context, key string, withValue bool, now int64) (e entry, ok bool, err error) {
	st := ns.getMeta
	if withValue {
		st = ns.getValue
	}
	var exp sql.NullInt64
	var value, meta []byte
	err = st.QueryRowContext(ctx, key).Scan(&value, &meta, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	e = entry{key: key, value: value, metadata: meta, expiration: exp.Int64, expires: exp.Valid}
	if withValue && e.value == nil {
		e.value = []byte{}
	}
	if e.expired(now) {
		ns.deleteExpired(ctx, []string{key}, now)
		return entry{}, false, nil
	}
	return e, true, nil
}

// deleteExpired removes keys that were found expired; a key put again since is kept. A failure
// changes nothing a reader sees (expired keys are filtered on every read), so it is ignored.
func (ns *Namespace) deleteExpired(ctx context.Context, keys []string, now int64) {
	for _, k := range keys {
		if _, err := ns.delExpired.ExecContext(ctx, k, now); err != nil {
			return
		}
	}
}

// listing asks for the keys in order, from just after after (if set), with prefix, up to limit.
type listing struct {
	prefix    string
	after     string
	hasAfter  bool
	limit     int // > 0
	withValue bool
}

// list returns the live records l asks for and whether more may follow. A page stops early
// once it holds listBytes of values.
func (ns *Namespace) list(ctx context.Context, l listing, now int64) (page []entry, more bool, err error) {
	var q strings.Builder
	q.WriteString("SELECT key, ")
	if l.withValue {
		q.WriteString("value")
	} else {
		q.WriteString("NULL")
	}
	q.WriteString(", metadata, expiration FROM kv WHERE true")
	var args []any
	if l.prefix != "" {
		q.WriteString(" AND key >= ?")
		args = append(args, l.prefix)
		if end, ok := prefixEnd(l.prefix); ok {
			q.WriteString(" AND key < ?")
			args = append(args, end)
		}
	}
	if l.hasAfter {
		q.WriteString(" AND key > ?")
		args = append(args, l.after)
	}
	// No LIMIT: expired rows are skipped here, and the rows are read one at a time in key order
	// (the primary key's index), so stopping early costs nothing.
	q.WriteString(" ORDER BY key")
	rows, err := ns.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, false, err
	}
	var expired []string
	bytes := 0
	for rows.Next() {
		var e entry
		var exp sql.NullInt64
		if err := rows.Scan(&e.key, &e.value, &e.metadata, &exp); err != nil {
			rows.Close()
			return nil, false, err
		}
		e.expiration, e.expires = exp.Int64, exp.Valid
		if e.expired(now) {
			if len(expired) < maxLazyDeletes {
				expired = append(expired, e.key)
			}
			continue
		}
		if len(page) == l.limit || bytes >= listBytes {
			more = true
			break
		}
		if l.withValue && e.value == nil {
			e.value = []byte{}
		}
		bytes += len(e.value)
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, false, err
	}
	rows.Close()
	ns.deleteExpired(ctx, expired, now)
	return page, more, nil
}

// prefixEnd is the least string greater than every string starting with prefix, in SQLite's
// byte order; ok is false when there is none (the prefix is all 0xff bytes).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// putAll stores records, overwriting what their keys held; several are one transaction.
func (ns *Namespace) putAll(ctx context.Context, es []entry) error {
	if len(es) == 1 {
		return ns.putOne(ctx, ns.put, &es[0])
	}
	tx, err := ns.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, ns.put)
	for i := range es {
		if err := ns.putOne(ctx, st, &es[i]); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (ns *Namespace) putOne(ctx context.Context, st *sql.Stmt, e *entry) error {
	var meta, exp any
	if e.metadata != nil {
		meta = string(e.metadata)
	}
	if e.expires {
		exp = e.expiration
	}
	value := e.value
	if value == nil {
		value = []byte{}
	}
	_, err := st.ExecContext(ctx, e.key, value, meta, exp)
	return err
}

// delete removes key, reporting whether a live record was there.
func (ns *Namespace) delete(ctx context.Context, key string, now int64) (bool, error) {
	var exp sql.NullInt64
	err := ns.del.QueryRowContext(ctx, key).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !exp.Valid || exp.Int64 > now, nil
}

// deleteAll removes keys in one transaction; keys that aren't there are no error.
func (ns *Namespace) deleteAll(ctx context.Context, keys []string) error {
	tx, err := ns.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, ns.del)
	for _, k := range keys {
		rows, err := st.QueryContext(ctx, k)
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
