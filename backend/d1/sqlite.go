package d1

import (
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	_ "modernc.org/sqlite" // registers the "sqlite" driver and applies the library's process-wide patches
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeoutMillis is how long a statement waits for another connection's lock before failing
// with SQLITE_BUSY: concurrent writers queue instead of failing at once.
const busyTimeoutMillis = 10_000

// conn is one SQLite connection driven through the C API (transpiled by modernc), owned by one
// goroutine. The C API rather than database/sql gives what the wire protocol needs and the driver
// hides: the tail of a multi-statement string, declared column types before execution, the
// autocommit flag, the byte offset of a syntax error, and column values read in place (no copy
// per value, no time parsing of DATE columns).
//
// Only interrupt may be called from another goroutine; mu keeps it from racing close.
type conn struct {
	tls *libc.TLS
	mu  sync.Mutex
	db  uintptr

	sql     cbuf   // SQL text being prepared
	loaded  string // the string sql holds, so that its statements are prepared from one copy
	val     cbuf   // a bound text or blob value; SQLite copies it (SQLITE_TRANSIENT)
	version string
}

// cbuf is a growable buffer in C memory.
type cbuf struct {
	p uintptr
	n int
}

// cmem views n bytes of C memory at p. The view is valid while SQLite keeps the memory, which
// for a column value is until the next step, reset or finalize of its statement.
func cmem(p uintptr, n int) []byte {
	if p == 0 || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(nil, p)), n)
}

// cstring copies the NUL-terminated C string at p.
func cstring(p uintptr) string {
	if p == 0 {
		return ""
	}
	return libc.GoString(p)
}

// put copies b into buf, NUL-terminated, and returns its address.
func put[T ~string | ~[]byte](c *conn, buf *cbuf, b T) (uintptr, error) {
	if buf.n < len(b)+1 {
		size := max(len(b)+1, 256, 2*buf.n)
		p := sqlite3.Xsqlite3_realloc64(c.tls, buf.p, uint64(size))
		if p == 0 {
			return 0, errNoMemory
		}
		buf.p, buf.n = p, size
	}
	dst := cmem(buf.p, len(b)+1)
	copy(dst, b)
	dst[len(b)] = 0
	return buf.p, nil
}

var errNoMemory = &sqliteError{code: sqlite3.SQLITE_NOMEM, msg: "out of memory"}

// sqliteError is a failure reported by SQLite: its extended result code and message.
type sqliteError struct {
	code   int    // extended result code
	msg    string // sqlite3_errmsg
	offset int    // byte offset of the error in the SQL text, or -1
}

func (e *sqliteError) Error() string { return fmt.Sprintf("sqlite: %s (%d)", e.msg, e.code) }

// err returns the connection's last error for the result code rc.
func (c *conn) err(rc int32) *sqliteError {
	e := &sqliteError{code: int(rc), offset: -1}
	if c.db == 0 {
		e.msg = cstring(sqlite3.Xsqlite3_errstr(c.tls, rc))
		return e
	}
	if ext := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db); ext&0xff == rc&0xff {
		e.code = int(ext)
	}
	e.msg = cstring(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	e.offset = int(sqlite3.Xsqlite3_error_offset(c.tls, c.db))
	return e
}

// openConn opens path read-write, creating it, with the settings every session relies on.
func openConn(path string) (*conn, error) {
	c := &conn{tls: libc.NewTLS()}
	name, err := put(c, &c.sql, path)
	if err != nil {
		c.close()
		return nil, err
	}
	pdb := c.tls.Alloc(int(unsafe.Sizeof(uintptr(0))))
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pdb,
		sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_CREATE|sqlite3.SQLITE_OPEN_FULLMUTEX, 0)
	c.db = *(*uintptr)(unsafe.Add(nil, pdb))
	c.tls.Free(int(unsafe.Sizeof(uintptr(0))))
	if rc != sqlite3.SQLITE_OK {
		e := c.err(rc)
		c.close()
		return nil, e
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, busyTimeoutMillis)
	c.version = cstring(sqlite3.Xsqlite3_libversion(c.tls))
	// synchronous=FULL: a commit returns only after the WAL is fsynced, so an acknowledged write
	// survives kill -9 and power loss alike (NORMAL would survive only the former).
	if err := c.exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// exec runs statements that return nothing the caller needs (pragmas, BEGIN, ROLLBACK).
func (c *conn) exec(sql string) error {
	c.loaded = ""
	p, err := put(c, &c.sql, sql)
	if err != nil {
		return err
	}
	if rc := sqlite3.Xsqlite3_exec(c.tls, c.db, p, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// autocommit reports whether no transaction is open.
func (c *conn) autocommit() bool { return sqlite3.Xsqlite3_get_autocommit(c.tls, c.db) != 0 }

// changes is the number of rows the last INSERT, UPDATE or DELETE changed.
func (c *conn) changes() int64 { return sqlite3.Xsqlite3_changes64(c.tls, c.db) }

// interrupt makes the statement running on c fail with SQLITE_INTERRUPT; safe from any goroutine.
func (c *conn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db != 0 {
		// A TLS of its own: c.tls belongs to the goroutine running the statement.
		tls := libc.NewTLS()
		sqlite3.Xsqlite3_interrupt(tls, c.db)
		tls.Close()
	}
}

func (c *conn) close() {
	c.mu.Lock()
	db := c.db
	c.db = 0
	c.mu.Unlock()
	if db != 0 {
		// close_v2 finalizes lazily: statements still prepared are released with the connection.
		sqlite3.Xsqlite3_close_v2(c.tls, db)
	}
	sqlite3.Xsqlite3_free(c.tls, c.sql.p)
	sqlite3.Xsqlite3_free(c.tls, c.val.p)
	c.sql, c.val = cbuf{}, cbuf{}
	c.tls.Close()
}

// stmt is a prepared SQLite statement.
type stmt struct {
	c *conn
	p uintptr
}

// prepare compiles the first statement in sql[off:]. It returns a nil stmt for text holding only
// whitespace and comments, and the offset where the next statement begins.
func (c *conn) prepare(sql string, off int, persistent bool) (*stmt, int, error) {
	// A multi-statement string is copied to C memory once, not once per statement.
	base := c.sql.p
	if len(c.loaded) != len(sql) || unsafe.StringData(c.loaded) != unsafe.StringData(sql) {
		var err error
		if base, err = put(c, &c.sql, sql); err != nil {
			return nil, 0, err
		}
		c.loaded = sql
	}
	var flags uint32
	if persistent {
		flags = sqlite3.SQLITE_PREPARE_PERSISTENT
	}
	const ptr = int(unsafe.Sizeof(uintptr(0)))
	out := c.tls.Alloc(2 * ptr)
	defer c.tls.Free(2 * ptr)
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, base+uintptr(off), int32(len(sql)-off), flags, out, out+uintptr(ptr))
	if rc != sqlite3.SQLITE_OK {
		e := c.err(rc)
		if e.offset >= 0 {
			e.offset += off
		}
		return nil, 0, e
	}
	p := *(*uintptr)(unsafe.Add(nil, out))
	tail := int(*(*uintptr)(unsafe.Add(nil, out+uintptr(ptr))) - base)
	if p == 0 {
		return nil, tail, nil
	}
	return &stmt{c: c, p: p}, tail, nil
}

func (s *stmt) finalize() {
	if s != nil && s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
	}
}

// reset rewinds the statement so it can run again; bindings stay.
func (s *stmt) reset() { sqlite3.Xsqlite3_reset(s.c.tls, s.p) }

// step advances to the next row: true for a row, false when done.
func (s *stmt) step() (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		// reset returns the detailed error and readies the statement for another run.
		rc = sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		if rc == sqlite3.SQLITE_OK {
			rc = sqlite3.SQLITE_ERROR
		}
		e := s.c.err(rc)
		e.offset = -1 // an offset from running refers to the statement, not the query text
		return false, e
	}
}

func (s *stmt) readonly() bool { return sqlite3.Xsqlite3_stmt_readonly(s.c.tls, s.p) != 0 }

func (s *stmt) paramCount() int { return int(sqlite3.Xsqlite3_bind_parameter_count(s.c.tls, s.p)) }

// paramName is the parameter's name as written ("$1", "?2", ":x"), or "" for a bare "?".
func (s *stmt) paramName(i int) string {
	return cstring(sqlite3.Xsqlite3_bind_parameter_name(s.c.tls, s.p, int32(i)))
}

func (s *stmt) columnCount() int { return int(sqlite3.Xsqlite3_column_count(s.c.tls, s.p)) }

func (s *stmt) columnName(i int) string {
	return cstring(sqlite3.Xsqlite3_column_name(s.c.tls, s.p, int32(i)))
}

// columnDecltype is the declared type of the table column behind result column i, "" for an
// expression.
func (s *stmt) columnDecltype(i int) string {
	return cstring(sqlite3.Xsqlite3_column_decltype(s.c.tls, s.p, int32(i)))
}

// SQLite storage classes of a column value.
const (
	sqlInteger = sqlite3.SQLITE_INTEGER
	sqlFloat   = sqlite3.SQLITE_FLOAT
	sqlText    = sqlite3.SQLITE_TEXT
	sqlBlob    = sqlite3.SQLITE_BLOB
	sqlNull    = sqlite3.SQLITE_NULL
)

func (s *stmt) columnType(i int) int {
	return int(sqlite3.Xsqlite3_column_type(s.c.tls, s.p, int32(i)))
}

func (s *stmt) columnInt64(i int) int64 { return sqlite3.Xsqlite3_column_int64(s.c.tls, s.p, int32(i)) }

func (s *stmt) columnDouble(i int) float64 {
	return sqlite3.Xsqlite3_column_double(s.c.tls, s.p, int32(i))
}

// columnText views the value as UTF-8 text, valid until the next step.
func (s *stmt) columnText(i int) []byte {
	p := sqlite3.Xsqlite3_column_text(s.c.tls, s.p, int32(i))
	return cmem(p, int(sqlite3.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i))))
}

// columnBlob views the value as bytes, valid until the next step.
func (s *stmt) columnBlob(i int) []byte {
	p := sqlite3.Xsqlite3_column_blob(s.c.tls, s.p, int32(i))
	return cmem(p, int(sqlite3.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i))))
}

func (s *stmt) bindErr(rc int32) error {
	if rc != sqlite3.SQLITE_OK {
		return s.c.err(rc)
	}
	return nil
}

func (s *stmt) bindNull(i int) error {
	return s.bindErr(sqlite3.Xsqlite3_bind_null(s.c.tls, s.p, int32(i)))
}

func (s *stmt) bindInt64(i int, v int64) error {
	return s.bindErr(sqlite3.Xsqlite3_bind_int64(s.c.tls, s.p, int32(i), v))
}

func (s *stmt) bindDouble(i int, v float64) error {
	return s.bindErr(sqlite3.Xsqlite3_bind_double(s.c.tls, s.p, int32(i), v))
}

// maxBindLen is SQLite's own limit on a value (SQLITE_MAX_LENGTH).
const maxBindLen = 1_000_000_000

func (s *stmt) bindText(i int, v []byte) error {
	if len(v) > maxBindLen {
		return &sqliteError{code: sqlite3.SQLITE_TOOBIG, msg: "string or blob too big", offset: -1}
	}
	p, err := put(s.c, &s.c.val, v)
	if err != nil {
		return err
	}
	return s.bindErr(sqlite3.Xsqlite3_bind_text(s.c.tls, s.p, int32(i), p, int32(len(v)), sqlite3.SQLITE_TRANSIENT))
}

func (s *stmt) bindBlob(i int, v []byte) error {
	if len(v) > maxBindLen {
		return &sqliteError{code: sqlite3.SQLITE_TOOBIG, msg: "string or blob too big", offset: -1}
	}
	p, err := put(s.c, &s.c.val, v)
	if err != nil {
		return err
	}
	return s.bindErr(sqlite3.Xsqlite3_bind_blob(s.c.tls, s.p, int32(i), p, int32(len(v)), sqlite3.SQLITE_TRANSIENT))
}

// totalChanges is the rows changed on this connection since it opened.
func (c *conn) totalChanges() int64 { return sqlite3.Xsqlite3_total_changes64(c.tls, c.db) }

// lastRowID is the rowid of the last row this connection inserted.
func (c *conn) lastRowID() int64 { return sqlite3.Xsqlite3_last_insert_rowid(c.tls, c.db) }
