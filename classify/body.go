package classify

import (
	"encoding/json"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Body is what a function's body may do to the database, read from its source: the relations
// it writes (tables, and sequences through nextval and setval) and the functions it calls, so
// that whoever keeps a catalog of functions can follow calls from one to the next.
type Body struct {
	Writes []string // relations written, sorted and deduplicated, named as in the body
	Calls  []string // functions called, as Statement.Functions names them
	// All says the body may write any relation: it runs SQL built at run time (EXECUTE in
	// PL/pgSQL), its language is not one the parser reads, or part of it does not parse.
	All bool
}

// FunctionBody reads the body of a function in language lang: for "sql", src is pg_proc.prosrc;
// for "plpgsql", src is the whole CREATE FUNCTION statement (pg_get_functiondef), which is
// what libpg_query's PL/pgSQL parser reads. Any other language may do anything: All.
// It does no I/O; safe for concurrent use.
func FunctionBody(lang, src string) Body {
	var b Body
	switch lang {
	case "sql":
		if strings.TrimSpace(src) == "" { // a BEGIN ATOMIC body lives in prosqlbody: not read here
			return Body{All: true}
		}
		b.add(Classify(src))
	case "plpgsql":
		b.plpgsql(src)
	default:
		return Body{All: true}
	}
	b.Writes, b.Calls = sortedSet(b.Writes), sortedSet(b.Calls)
	return b
}

// add takes what one classified piece of the body does.
func (b *Body) add(st Statement) {
	if st.ParseError || st.AllTables {
		b.All = true
	}
	if st.Kind == KindWrite || st.Kind == KindDDL {
		b.Writes = append(b.Writes, st.Writes...)
	}
	for _, s := range st.Sequences {
		if s == "*" {
			b.All = true
			continue
		}
		b.Writes = append(b.Writes, s)
	}
	b.Calls = append(b.Calls, st.Functions...)
}

// plpgsql walks the PL/pgSQL parse tree of def: every embedded SQL statement or expression is
// classified, and dynamic SQL (EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE,
// RETURN QUERY EXECUTE) may write anything.
func (b *Body) plpgsql(def string) {
	out, err := pg_query.ParsePlPgSqlToJSON(def)
	if err != nil {
		b.All = true
		return
	}
	var tree any
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		b.All = true
		return
	}
	b.walk(tree)
}

// walk visits one value of the PL/pgSQL tree.
func (b *Body) walk(v any) {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			b.walk(x)
		}
	case map[string]any:
		for k, x := range v {
			switch k {
			case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "dynquery":
				b.All = true
			case "PLpgSQL_expr":
				b.expr(x)
				continue
			}
			b.walk(x)
		}
	}
}

// PL/pgSQL's parse modes of an embedded expression (RawParseMode).
const (
	parseDefault = 0 // a whole SQL statement
	parseExpr    = 2 // an expression, run as SELECT expr
)

// expr classifies one PLpgSQL_expr: its query text read as its parse mode says.
func (b *Body) expr(v any) {
	e, _ := v.(map[string]any)
	q, _ := e["query"].(string)
	if q == "" {
		return
	}
	mode, _ := e["parseMode"].(float64)
	switch int(mode) {
	case parseDefault:
		b.add(Classify(q))
	case parseExpr:
		b.add(Classify("SELECT " + q))
	default: // an assignment, target := expression
		i := strings.Index(q, ":=")
		if i < 0 {
			i = strings.IndexByte(q, '=')
		}
		if i < 0 {
			b.All = true
			return
		}
		b.add(Classify("SELECT " + strings.TrimLeft(q[i:], ":=")))
	}
}
