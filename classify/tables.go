package classify

import (
	"slices"
	"strings"
)

// rangeVar is the name a RangeVar holds. The parser has already lower-cased unquoted
// identifiers and kept quoted ones as they are.
type rangeVar struct{ catalog, schema, rel string }

// readRangeVar reads the RangeVar object at v.
func (w *walker) readRangeVar(v int32) rangeVar {
	var r rangeVar
	for _, m := range w.t.items(v) {
		switch val := &w.t.vals[m]; val.key {
		case "catalogname":
			r.catalog = val.text
		case "schemaname":
			r.schema = val.text
		case "relname":
			r.rel = val.text
		}
	}
	return r
}

// name is the relation's name as written: [catalog.][schema.]relation. It never shares memory
// with the JSON text, which a Statement kept in a cache must not pin.
func (r rangeVar) name() string {
	switch {
	case r.catalog != "":
		return r.catalog + "." + r.schema + "." + r.rel
	case r.schema != "":
		return r.schema + "." + r.rel
	}
	return strings.Clone(r.rel)
}

// rel records the relation at v: read or written as the mode says, unless it names a CTE in
// scope. Only an unqualified name can name a CTE.
func (w *walker) rel(v int32) {
	r := w.readRangeVar(v)
	if r.rel == "" {
		return
	}
	if w.mode == modeWrite && !w.planned {
		w.writes = append(w.writes, r.name())
		return
	}
	if r.schema == "" && r.catalog == "" && slices.Contains(w.ctes, r.rel) {
		return
	}
	w.reads = append(w.reads, r.name())
}

// target records the table at v whose rows an INSERT, UPDATE, DELETE, MERGE, SELECT INTO or
// COPY FROM changes. Under EXPLAIN without ANALYZE or PREPARE nothing runs: it counts as read.
func (w *walker) target(v int32) {
	if v < 0 {
		return
	}
	if typ, body := w.t.node(v); typ == "RangeVar" {
		v = body
	}
	r := w.readRangeVar(v)
	if r.rel == "" {
		return
	}
	if w.planned {
		w.reads = append(w.reads, r.name())
		return
	}
	w.writes = append(w.writes, r.name())
	w.dml = true
}

// isTemp reports whether a table name is qualified with a temporary schema (pg_temp, pg_temp_3):
// another session's temporary table of the same name is a different table.
func isTemp(name string) bool {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return false
	}
	schema := name[:dot]
	schema = schema[strings.LastIndexByte(schema, '.')+1:]
	return strings.HasPrefix(schema, "pg_temp")
}

// relationObjects are the object types whose DDL changes what queries of that name return and
// nothing else, so that bumping those names is enough. DDL on anything else (functions, types,
// schemas, roles, policies, indexes, ...) may change any query's answer or volatility.
var relationObjects = map[string]bool{
	"OBJECT_TABLE":         true,
	"OBJECT_VIEW":          true,
	"OBJECT_MATVIEW":       true,
	"OBJECT_FOREIGN_TABLE": true,
	"OBJECT_SEQUENCE":      true,
}

// ddl walks a DDL statement, in which every relation named is written. DDL whose effect
// reaches past the relations it names sets all.
func (w *walker) ddl(typ string, body int32) {
	t := w.t
	w.mode = modeWrite
	switch typ {
	case "CreateStmt", "IndexStmt", "ViewStmt", "CreateTableAsStmt", "CreateSeqStmt", "AlterSeqStmt":
		// CREATE TABLE/INDEX/VIEW/SEQUENCE/TABLE AS/MATERIALIZED VIEW, ALTER SEQUENCE: the relation
		// created or changed is written; the queries of views and CREATE TABLE AS read.
	case "AlterTableStmt":
		w.all = w.all || !relationObjects[t.text(body, "objtype")]
	case "RenameStmt":
		rv := t.member(body, "relation")
		if rv < 0 {
			w.all = true
			break
		}
		// After ALTER TABLE a RENAME TO b, "b" answers what "a" did.
		if newname := t.text(body, "newname"); relationObjects[t.text(body, "renameType")] && newname != "" {
			r := w.readRangeVar(rv)
			r.rel = newname
			w.writes = append(w.writes, r.name())
		}
	case "DropStmt":
		if !relationObjects[t.text(body, "removeType")] {
			w.all = true // nothing to name: the whole database changes
			return
		}
		// CASCADE also drops views and foreign keys of other tables.
		w.all = w.all || t.text(body, "behavior") == "DROP_CASCADE"
		if objs := t.member(body, "objects"); objs >= 0 {
			for _, o := range t.items(objs) {
				if typ, list := t.node(o); typ == "List" {
					if name := w.dottedName(t.member(list, "items")); name != "" {
						w.writes = append(w.writes, name)
					}
				}
			}
		}
		return
	default:
		// Everything else: CREATE/ALTER/DROP of functions, types, schemas, extensions, triggers,
		// rules, policies; GRANT, REVOKE, COMMENT, SECURITY LABEL, ALTER ... SET SCHEMA,
		// CREATE DATABASE, ALTER SYSTEM, ... and node types we don't know.
		w.all = true
	}
	w.visit(body)
}

// dottedName joins a list of String nodes ("public", "users") with dots, in new memory.
// Anything but strings (as in DROP FUNCTION's argument lists) gives "".
func (w *walker) dottedName(list int32) string {
	if list < 0 || w.t.vals[list].kind != '[' {
		return ""
	}
	items := w.t.items(list)
	if len(items) == 1 {
		s, _ := w.t.stringNode(items[0])
		return strings.Clone(s)
	}
	var b strings.Builder
	for i, it := range items {
		s, ok := w.t.stringNode(it)
		if !ok {
			return ""
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
