package d1

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	sqlite3 "modernc.org/sqlite/lib"
)

// Running SQL in-process, for the HTTP query API: a batch of statements on a SQLite connection
// of its own, with each statement's result appended to a JSON document as D1's API shapes it.
// The connection is a session's in all but the wire: the same file, WAL and settings, so what
// the batch writes is what every PostgreSQL session of the DB reads next, and the other way
// round. Connections that batches leave clean are kept for the next (idle below): opening one
// costs most of a point read's time.

// maxBatchOutput bounds the JSON a batch produces; past it the batch fails instead of holding
// an unbounded answer in memory.
const maxBatchOutput = 64 << 20

// errBatchTooLarge is a batch whose answer grew past maxBatchOutput.
var errBatchTooLarge = errors.New("the result is larger than 64 MiB: select fewer rows or columns")

// batchError is a failure of the request itself (a parameter, a statement D1 refuses), reported
// to the client as it is.
type batchError struct{ msg string }

func (e *batchError) Error() string { return e.msg }

// query is one request's statements with their parameters: the whole of a request's "sql", or
// one object of its "batch".
type query struct {
	sql    string
	params []any
}

// resultFormat is how a statement's rows are written: D1's /query writes objects by column
// name, /raw arrays under a list of columns.
type resultFormat int

const (
	formatObjects resultFormat = iota
	formatRaw
)

// runBatch runs every statement of every query on a connection of its own and appends one D1
// result object per statement to dst, comma-separated. Several statements (a query of several,
// or several queries) run in one transaction: all of them take effect or none. Each statement
// binds its query's params by its own parameter numbers (?N, $N; a bare ? is its position in
// that statement). The batch ends when ctx does or the DB closes, by interrupting the running
// statement. wrote reports whether a statement that may write ran (and was committed), so
// that whoever caches the database's reads knows to drop them.
func (db *DB) runBatch(ctx context.Context, dst []byte, qs []query, format resultFormat) (out []byte, wrote bool, err error) {
	if !db.enter() {
		return dst, false, errClosed
	}
	defer db.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.ctx, cancel)()
	c, err := db.takeConn()
	if err != nil {
		return dst, false, err
	}
	stopInterrupt := context.AfterFunc(ctx, c.interrupt)
	clean := true // the batch left nothing on c that the next one could see
	defer func() {
		// An interrupt that already fired may yet land: c can't serve another batch then.
		if stopInterrupt() && clean && c.autocommit() {
			db.putConn(c)
		} else {
			c.close()
		}
	}()

	multi := len(qs) > 1 || len(qs) == 1 && hasSecondStatement(qs[0].sql)
	if multi {
		// IMMEDIATE for the reason beginFor gives: a batch may read before it writes.
		if err := c.exec("BEGIN IMMEDIATE"); err != nil {
			return dst, false, err
		}
	}
	start := len(dst)
	n := 0
	for _, q := range qs {
		var ran int
		dst, ran, clean, err = c.runQuery(dst, q, n, clean, &wrote, format)
		n += ran
		if err == nil && len(dst)-start > maxBatchOutput {
			err = errBatchTooLarge
		}
		if err != nil {
			if multi {
				_ = c.exec("ROLLBACK")
			}
			return dst[:start], false, err
		}
	}
	if n == 0 {
		return dst, false, &batchError{"no statement to run in sql"}
	}
	if multi {
		if err := c.exec("COMMIT"); err != nil {
			_ = c.exec("ROLLBACK")
			return dst[:start], false, err
		}
	}
	return dst, wrote, nil
}

// runQuery runs the statements of q, appending their results after the n already appended; it
// returns how many ran and whether c is still clean, and sets *wrote when one may have written.
func (c *conn) runQuery(dst []byte, q query, n int, clean bool, wrote *bool, format resultFormat) ([]byte, int, bool, error) {
	off, ran := 0, 0
	for {
		kind, tag := classify(q.sql, off)
		if kind == kEmpty {
			// An empty statement (";;") is skipped; the end of the text ends the query.
			end := statementEnd(q.sql, off)
			if end >= len(q.sql) {
				return dst, ran, clean, nil
			}
			off = end
			continue
		}
		var err error
		switch {
		case kind == kBegin || kind == kBeginNative || kind == kCommit || kind == kRollback || kind == kRollbackTo,
			tag == "SAVEPOINT", tag == "RELEASE":
			err = &batchError{"BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not supported: the statements of one request already run as one transaction"}
		default:
			// PRAGMA, ATTACH, CREATE TEMP...: what changes the connection rather than the
			// database stays with the batch that ran it.
			clean = clean && (kind == kSelect || kind == kInsert || kind == kUpdate || kind == kDelete)
			if n+ran > 0 {
				dst = append(dst, ',')
			}
			dst, off, err = c.runOne(dst, q.sql, off, q.params, wrote, format)
			ran++
		}
		if err != nil {
			return dst, ran, clean, err
		}
		if len(dst) > maxBatchOutput {
			return dst, ran, clean, errBatchTooLarge
		}
	}
}

// runOne runs the statement at sql[off:] and appends its result object; it returns where the
// next statement starts. It sets *wrote when the statement is not read-only.
func (c *conn) runOne(dst []byte, sql string, off int, params []any, wrote *bool, format resultFormat) ([]byte, int, error) {
	began := time.Now()
	st, tail, err := c.prepare(sql, off, false)
	if err != nil || st == nil {
		return dst, tail, err
	}
	defer st.finalize()
	if !st.readonly() {
		*wrote = true
	}
	slots, _ := paramSlots(st)
	for i := 1; i < len(slots); i++ {
		if slots[i] > len(params) {
			return dst, tail, &batchError{"wrong number of parameter bindings: the statement uses ?" +
				strconv.Itoa(slots[i]) + " but " + strconv.Itoa(len(params)) + " params were given"}
		}
		if err := bindAny(st, i, params[slots[i]-1]); err != nil {
			return dst, tail, err
		}
	}
	totalBefore := sqlite3.Xsqlite3_total_changes64(c.tls, c.db)

	ncol := st.columnCount()
	names := make([]string, ncol)
	for i := range names {
		names[i] = st.columnName(i)
	}
	var rows int64
	if format == formatRaw {
		dst, rows, err = appendRawRows(dst, st, names)
	} else {
		dst, rows, err = appendObjectRows(dst, st, names)
	}
	if err != nil {
		return dst, tail, err
	}
	var changes int64
	if sqlite3.Xsqlite3_total_changes64(c.tls, c.db) != totalBefore {
		changes = c.changes()
	}
	dst = append(dst, `,"success":true,"meta":`...)
	dst = c.appendMeta(dst, time.Since(began), rows, changes)
	return append(dst, '}'), tail, nil
}

// appendObjectRows appends "results":[{column: value...}...] as /query answers it.
func appendObjectRows(dst []byte, st *stmt, names []string) ([]byte, int64, error) {
	keep := lastOfEachName(names)
	dst = append(dst, `{"results":[`...)
	dst, rows, err := appendEachRow(dst, st, func(dst []byte) []byte {
		dst = append(dst, '{')
		first := true
		for i := range names {
			if !keep[i] {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, names[i])
			dst = append(dst, ':')
			dst = appendColumnJSON(dst, st, i)
		}
		return append(dst, '}')
	})
	if err != nil {
		return dst, rows, err
	}
	return append(dst, ']'), rows, nil
}

// appendRawRows appends "results":{"columns":[...],"rows":[[...]...]} as /raw answers it:
// every column, duplicates included, in order.
func appendRawRows(dst []byte, st *stmt, names []string) ([]byte, int64, error) {
	dst = append(dst, `{"results":{"columns":[`...)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, n)
	}
	dst = append(dst, `],"rows":[`...)
	dst, rows, err := appendEachRow(dst, st, func(dst []byte) []byte {
		dst = append(dst, '[')
		for i := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendColumnJSON(dst, st, i)
		}
		return append(dst, ']')
	})
	if err != nil {
		return dst, rows, err
	}
	return append(dst, "]}"...), rows, nil
}

// appendEachRow steps st through its rows and appends each with appendRow, comma-separated,
// stopping with errBatchTooLarge once the output passes maxBatchOutput. It returns the rows
// appended.
func appendEachRow(dst []byte, st *stmt, appendRow func([]byte) []byte) ([]byte, int64, error) {
	var rows int64
	for {
		row, err := st.step()
		if err != nil {
			return dst, rows, err
		}
		if !row {
			return dst, rows, nil
		}
		if rows > 0 {
			dst = append(dst, ',')
		}
		rows++
		if dst = appendRow(dst); len(dst) > maxBatchOutput {
			return dst, rows, errBatchTooLarge
		}
	}
}

// appendMeta appends a statement's D1 meta object. rows_read counts the rows the statement
// returned (SQLite does not count the rows it visits), rows_written the rows it changed;
// size_after is the file's size as the statement left it, in pages times page size.
func (c *conn) appendMeta(dst []byte, took time.Duration, rows, changes int64) []byte {
	ms := float64(took.Microseconds()) / 1000
	dst = append(dst, `{"served_by":"slipstream","served_by_primary":true,"duration":`...)
	dst = strconv.AppendFloat(dst, ms, 'f', -1, 64)
	dst = append(dst, `,"changes":`...)
	dst = strconv.AppendInt(dst, changes, 10)
	dst = append(dst, `,"last_row_id":`...)
	dst = strconv.AppendInt(dst, sqlite3.Xsqlite3_last_insert_rowid(c.tls, c.db), 10)
	dst = append(dst, `,"changed_db":`...)
	dst = strconv.AppendBool(dst, changes > 0)
	dst = append(dst, `,"size_after":`...)
	dst = strconv.AppendInt(dst, c.size(), 10)
	dst = append(dst, `,"rows_read":`...)
	dst = strconv.AppendInt(dst, rows, 10)
	dst = append(dst, `,"rows_written":`...)
	dst = strconv.AppendInt(dst, changes, 10)
	dst = append(dst, `,"timings":{"sql_duration_ms":`...)
	dst = strconv.AppendFloat(dst, ms, 'f', -1, 64)
	return append(dst, "}}"...)
}

// size is the database's size in bytes as this connection sees it; 0 when SQLite won't say.
func (c *conn) size() int64 {
	pages, err1 := c.queryText("PRAGMA page_count")
	pageSize, err2 := c.queryText("PRAGMA page_size")
	p, err3 := strconv.ParseInt(pages, 10, 64)
	ps, err4 := strconv.ParseInt(pageSize, 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return 0
	}
	return p * ps
}

// lastOfEachName marks, for columns sharing a name, only the last: a JSON object keeps one value
// per key, and JavaScript's (D1's) keeps the last assigned.
func lastOfEachName(names []string) []bool {
	keep := make([]bool, len(names))
	for i := range names {
		keep[i] = true
		for j := i + 1; j < len(names); j++ {
			if names[j] == names[i] {
				keep[i] = false
				break
			}
		}
	}
	return keep
}

// bindAny binds a parameter decoded from JSON: nil, bool, int64, float64, string or []byte.
func bindAny(st *stmt, i int, v any) error {
	switch v := v.(type) {
	case nil:
		return st.bindNull(i)
	case bool:
		return st.bindInt64(i, int64(b2i(v)))
	case int64:
		return st.bindInt64(i, v)
	case float64:
		return st.bindDouble(i, v)
	case string:
		return st.bindText(i, []byte(v))
	case []byte:
		return st.bindBlob(i, v)
	}
	return &batchError{"unsupported parameter type"}
}

// appendColumnJSON appends column i of the current row as D1 answers it: INTEGER and REAL as
// numbers, TEXT as a string, BLOB as an array of byte values, NULL as null. A REAL that JSON
// can't hold (±Inf) is null, as JavaScript's JSON.stringify writes it.
func appendColumnJSON(dst []byte, st *stmt, i int) []byte {
	switch st.columnType(i) {
	case sqlInteger:
		return strconv.AppendInt(dst, st.columnInt64(i), 10)
	case sqlFloat:
		f := st.columnDouble(i)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case sqlText:
		return appendJSONString(dst, string(st.columnText(i)))
	case sqlBlob:
		b := st.columnBlob(i)
		dst = append(dst, '[')
		for k, c := range b {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(c), 10)
		}
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD, as encoding/json
// writes it.
func appendJSONString(dst []byte, s string) []byte {
	const hexdig = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// maxIdleConns bounds the connections kept per DB between batches.
const maxIdleConns = 4

// idle holds, per DB, the connections kept between batches. A DB's entry lives until the DB
// closes, which closes its connections and removes it.
var idle sync.Map // *DB -> *idleConns

type idleConns struct {
	mu     sync.Mutex
	conns  []*conn
	closed bool
}

// takeConn returns a kept connection, or opens one.
func (db *DB) takeConn() (*conn, error) {
	if v, ok := idle.Load(db); ok {
		ic := v.(*idleConns)
		ic.mu.Lock()
		if n := len(ic.conns); n > 0 {
			c := ic.conns[n-1]
			ic.conns = ic.conns[:n-1]
			ic.mu.Unlock()
			return c, nil
		}
		ic.mu.Unlock()
	}
	return openConn(db.path)
}

// putConn keeps c for the next batch, or closes it when enough are kept or the DB is closing.
func (db *DB) putConn(c *conn) {
	v, ok := idle.Load(db)
	if !ok {
		// The first kept connection: the set counts as a session, so that Close, which ends
		// db.ctx and then waits for sessions, waits for its connections to be closed.
		if !db.enter() {
			c.close()
			return
		}
		fresh := &idleConns{}
		if v, ok = idle.LoadOrStore(db, fresh); ok {
			db.wg.Done()
		} else {
			context.AfterFunc(db.ctx, func() {
				defer db.wg.Done()
				fresh.mu.Lock()
				conns := fresh.conns
				fresh.conns, fresh.closed = nil, true
				fresh.mu.Unlock()
				for _, c := range conns {
					c.close()
				}
				idle.Delete(db)
			})
		}
	}
	ic := v.(*idleConns)
	ic.mu.Lock()
	if ic.closed || len(ic.conns) >= maxIdleConns {
		ic.mu.Unlock()
		c.close()
		return
	}
	ic.conns = append(ic.conns, c)
	ic.mu.Unlock()
}
