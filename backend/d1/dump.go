package d1

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SQL dumps, for the REST API's export and import: a dump is SQL text that rebuilds the
// database's tables, rows, indexes, triggers and views, as sqlite3's .dump and D1's export
// write it; an import runs such text as one transaction.

// dumpOptions are D1's export dump_options.
type dumpOptions struct {
	NoData   bool     `json:"no_data"`
	NoSchema bool     `json:"no_schema"`
	Tables   []string `json:"tables"`
}

// errDumpTooLarge is a dump that grew past maxTransfer.
var errDumpTooLarge = errors.New("the export is larger than 64 MiB: copy the database file instead")

// dump writes the database as SQL, from one read transaction so that it is consistent.
func (db *DB) dump(ctx context.Context, opt dumpOptions) ([]byte, error) {
	if !db.enter() {
		return nil, errClosed
	}
	defer db.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.ctx, cancel)()
	c, err := openConn(db.path)
	if err != nil {
		return nil, err
	}
	defer c.close()
	defer context.AfterFunc(ctx, c.interrupt)()
	if err := c.exec("BEGIN"); err != nil {
		return nil, err
	}
	defer c.exec("ROLLBACK")

	type object struct{ kind, name, sql string }
	var objects []object
	err = c.each("SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY rowid", func(st *stmt) error {
		objects = append(objects, object{string(st.columnText(0)), string(st.columnText(1)), string(st.columnText(2))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	wanted := func(name string) bool { return len(opt.Tables) == 0 || slices.Contains(opt.Tables, name) }
	out := []byte("PRAGMA defer_foreign_keys=TRUE;\n")
	// Tables and their rows first, then what refers to tables: indexes, triggers, views.
	for _, o := range objects {
		if o.kind != "table" || !wanted(o.name) {
			continue
		}
		if !opt.NoSchema {
			out = append(append(out, o.sql...), ";\n"...)
		}
		if opt.NoData || strings.HasPrefix(strings.ToUpper(o.sql), "CREATE VIRTUAL") {
			continue
		}
		prefix := "INSERT INTO " + quoteIdent(o.name) + " VALUES("
		err := c.each("SELECT * FROM "+quoteIdent(o.name), func(st *stmt) error {
			out = append(out, prefix...)
			for i := range st.columnCount() {
				if i > 0 {
					out = append(out, ',')
				}
				out = appendSQLValue(out, st, i)
			}
			out = append(out, ");\n"...)
			if len(out) > maxTransfer {
				return errDumpTooLarge
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !opt.NoSchema {
		for _, o := range objects {
			if o.kind != "table" && (len(opt.Tables) == 0 || o.kind != "view") {
				out = append(append(out, o.sql...), ";\n"...)
			}
		}
	}
	return out, nil
}

// each runs a query and calls f on every row.
func (c *conn) each(sql string, f func(*stmt) error) error {
	st, _, err := c.prepare(sql, 0, false)
	if err != nil || st == nil {
		return err
	}
	defer st.finalize()
	for {
		row, err := st.step()
		if err != nil || !row {
			return err
		}
		if err := f(st); err != nil {
			return err
		}
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// appendSQLValue appends column i as an SQL literal that reads back as the same value and type.
func appendSQLValue(dst []byte, st *stmt, i int) []byte {
	switch st.columnType(i) {
	case sqlInteger:
		return strconv.AppendInt(dst, st.columnInt64(i), 10)
	case sqlFloat:
		f := st.columnDouble(i)
		switch {
		case math.IsNaN(f):
			return append(dst, "NULL"...)
		case math.IsInf(f, 1):
			return append(dst, "1e999"...)
		case math.IsInf(f, -1):
			return append(dst, "-1e999"...)
		}
		n := len(dst)
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		if !strings.ContainsAny(string(dst[n:]), ".e") {
			dst = append(dst, ".0"...) // stays a REAL
		}
		return dst
	case sqlText:
		return append(append(dst, '\''), append([]byte(strings.ReplaceAll(string(st.columnText(i)), "'", "''")), '\'')...)
	case sqlBlob:
		b := st.columnBlob(i)
		dst = append(dst, "X'"...)
		dst = hex.AppendEncode(dst, b)
		return append(dst, '\'')
	}
	return append(dst, "NULL"...)
}

// importResult is what an import did, in D1's terms.
type importResult struct {
	NumQueries int        `json:"num_queries"`
	Meta       importMeta `json:"meta"`
}

type importMeta struct {
	ServedBy     string  `json:"served_by"`
	Duration     float64 `json:"duration"`
	Changes      int64   `json:"changes"`
	LastRowID    int64   `json:"last_row_id"`
	ChangedDB    bool    `json:"changed_db"`
	SizeAfter    int64   `json:"size_after"`
	RowsRead     int64   `json:"rows_read"`
	RowsWritten  int64   `json:"rows_written"`
	ServedByPrim bool    `json:"served_by_primary"`
}

// runScript runs every statement of sql in one transaction: all take effect or none.
// Transaction statements in the text (a dump's BEGIN TRANSACTION and COMMIT) are skipped, since
// the script is a transaction already.
func (db *DB) runScript(ctx context.Context, sql string) (importResult, error) {
	var res importResult
	if !db.enter() {
		return res, errClosed
	}
	defer db.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.ctx, cancel)()
	began := time.Now()
	c, err := openConn(db.path)
	if err != nil {
		return res, err
	}
	defer c.close() // a script may set pragmas: its connection is not reused
	defer context.AfterFunc(ctx, c.interrupt)()
	if err := c.exec("BEGIN IMMEDIATE"); err != nil {
		return res, err
	}
	before := c.totalChanges()
	for off := 0; off < len(sql); {
		kind, _ := classify(sql, off)
		switch kind {
		case kEmpty, kBegin, kBeginNative, kCommit, kRollback:
			off = statementEnd(sql, off)
			continue
		}
		st, tail, err := c.prepare(sql, off, false)
		if err == nil && st != nil {
			for {
				var row bool
				if row, err = st.step(); err != nil || !row {
					break
				}
				res.Meta.RowsRead++
			}
			st.finalize()
			res.NumQueries++
		}
		if err != nil {
			_ = c.exec("ROLLBACK")
			return importResult{}, err
		}
		off = tail
	}
	if err := c.exec("COMMIT"); err != nil {
		_ = c.exec("ROLLBACK")
		return importResult{}, err
	}
	res.Meta.Changes = c.totalChanges() - before
	res.Meta.RowsWritten = res.Meta.Changes
	res.Meta.ChangedDB = res.Meta.Changes > 0
	res.Meta.LastRowID = c.lastRowID()
	res.Meta.SizeAfter = c.size()
	res.Meta.ServedBy, res.Meta.ServedByPrim = "slipstream", true
	res.Meta.Duration = float64(time.Since(began).Microseconds()) / 1000
	return res, nil
}
