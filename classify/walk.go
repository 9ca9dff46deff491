package classify

// walker collects what one parse tree touches. It visits every value of the tree, so that node
// types it has no case for (and those a later libpg_query adds) are still searched for tables
// and function calls; the cases below only say which relations are written rather than read,
// and where a name is a CTE rather than a table.
type walker struct {
	t                    *tree
	reads, writes, funcs []string
	seqs                 []string // sequences nextval and setval change

	ctes    []string // names of the common table expressions in scope, innermost last
	mode    relMode  // how a relation met now is used
	planned bool     // inside EXPLAIN without ANALYZE or PREPARE: nothing runs, writes count as reads
	dml     bool     // this statement writes rows through INSERT/UPDATE/DELETE/MERGE/SELECT INTO/COPY FROM
	locking bool
	all     bool
}

// relMode says whether a relation the walk meets is read or changed. Queries (SELECT, and all
// of INSERT/UPDATE/DELETE/MERGE but their target) read; DDL changes every relation it names.
type relMode uint8

const (
	modeRead relMode = iota
	modeWrite
)

// statement walks one top-level statement, a Node, and returns its kind.
func (w *walker) statement(v int32) Kind {
	typ, body := w.t.node(v)
	if typ == "" {
		return KindRead
	}
	w.dml = false
	w.mode = modeRead
	k := w.statementKind(typ, body)
	if w.dml && (k == KindRead || k == KindUtility) {
		k = KindWrite // SELECT INTO, a data-modifying CTE, COPY (DELETE ... RETURNING) TO
	}
	return k
}

// statementKind walks a statement of type typ and decides its kind; statement adds what the walk found.
func (w *walker) statementKind(typ string, body int32) Kind {
	t := w.t
	switch typ {
	case "SelectStmt":
		w.selectStmt(body)
		return KindRead
	case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
		w.modify(body)
		return KindWrite

	case "ExplainStmt":
		query := t.member(body, "query")
		if explainAnalyze(t, t.member(body, "options")) {
			// EXPLAIN ANALYZE runs the statement: it does what the statement does.
			if k := w.statement(query); k != KindRead {
				return k
			}
			return KindUtility
		}
		w.planned = true
		w.visit(query)
		w.planned = false
		return KindUtility
	case "CopyStmt":
		w.all = w.all || t.text(body, "is_program") == "true" // the server runs the client's program
		if t.text(body, "is_from") == "true" {
			w.target(t.member(body, "relation"))
			w.members(body, "relation", "")
			return KindWrite
		}
		w.visit(body)
		return KindUtility
	case "VacuumStmt", "ClusterStmt", "ReindexStmt", "CheckPointStmt":
		w.visit(body)
		return KindUtility
	case "LockStmt":
		w.locking = true
		w.visit(body)
		return KindUtility
	}
	if k, ok := w.otherKind(typ, body); ok {
		return k
	}
	w.ddl(typ, body)
	return KindDDL
}

// otherKind decides the kind of what is neither a query nor maintenance: session and
// transaction control, and statements that write without naming a table (NOTIFY, DO, CALL,
// TRUNCATE, REFRESH); false for DDL.
func (w *walker) otherKind(typ string, body int32) (Kind, bool) {
	t := w.t
	switch typ {
	case "VariableSetStmt", "VariableShowStmt", "DiscardStmt", "ListenStmt", "UnlistenStmt",
		"DeallocateStmt", "FetchStmt", "ClosePortalStmt", "LoadStmt":
		return KindSession, true
	case "DeclareCursorStmt":
		w.visit(body) // the cursor's query runs as the client fetches
		return KindSession, true
	case "PrepareStmt":
		w.planned = true // EXECUTE runs it, and EXECUTE is a write to anything
		w.visit(body)
		w.planned = false
		return KindSession, true

	case "TransactionStmt":
		// COMMIT PREPARED commits writes made earlier, maybe by another session: we can't know which.
		w.all = w.all || t.text(body, "kind") == "TRANS_STMT_COMMIT_PREPARED"
		return KindTransaction, true
	case "ConstraintsSetStmt":
		return KindTransaction, true

	case "NotifyStmt":
		return KindWrite, true // no table changes, but it must reach the origin every time
	case "DoStmt", "ExecuteStmt":
		w.all = true
		return KindWrite, true
	case "CallStmt":
		w.all = true
		if fc := t.member(body, "funccall"); fc >= 0 {
			w.funcCall(fc) // the procedure; its arguments may call functions too
			w.visit(fc)
		}
		return KindWrite, true
	case "TruncateStmt":
		w.all = w.all || t.text(body, "behavior") == "DROP_CASCADE"
		w.mode = modeWrite
		w.visit(body)
		return KindWrite, true
	case "RefreshMatViewStmt":
		w.mode = modeWrite
		w.visit(body)
		return KindWrite, true
	}
	return 0, false
}

// visit walks the value v and everything under it.
func (w *walker) visit(v int32) {
	if v < 0 {
		return
	}
	t := w.t
	switch t.vals[v].kind {
	case '[':
		for _, item := range t.items(v) {
			w.visit(item)
		}
	case '{':
		if typ, body := t.node(v); typ != "" {
			w.typed(typ, body)
		} else if t.member(v, "relname") >= 0 {
			w.rel(v) // a field typed RangeVar: InsertStmt.relation, IntoClause.rel, ...
		} else {
			w.members(v, "", "")
		}
	}
}

// typed walks the body of a Node of type typ.
func (w *walker) typed(typ string, body int32) {
	switch typ {
	case "String", "Integer", "Float", "Boolean", "BitString", "ColumnRef", "ParamRef", "A_Star", "TypeName":
		// Leaves: nothing below them names a table or calls a function.
	case "A_Const":
		w.constant(body)
	case "RangeVar":
		w.rel(body)
	case "SelectStmt":
		w.selectStmt(body)
	case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
		w.modify(body)
	case "LockingClause":
		// Its lockedRels are aliases from the FROM list, not tables: don't descend.
		w.locking = true
	case "FuncCall":
		w.funcCall(body)
		w.members(body, "", "")
	case "SQLValueFunction":
		w.funcs = append(w.funcs, sqlValueFunctionName(w.t.text(body, "op")))
	case "RangeTableSample":
		w.tableSample(body)
		w.members(body, "", "")
	default:
		if f := sqlJSONFunction(typ, w.t.text(body, "op")); f != "" {
			w.funcs = append(w.funcs, f)
		}
		w.members(body, "", "")
	}
}

// members walks the members of obj but those named skipA and skipB, which the caller handled.
func (w *walker) members(obj int32, skipA, skipB string) {
	for _, m := range w.t.items(obj) {
		if k := w.t.vals[m].key; k != skipA && k != skipB {
			w.visit(m)
		}
	}
}

// selectStmt walks a SELECT (or VALUES, or a set operation) in read mode.
func (w *walker) selectStmt(body int32) {
	t := w.t
	mark, mode := len(w.ctes), w.mode
	w.mode = modeRead
	w.with(t.member(body, "withClause"))
	for _, m := range t.items(body) {
		switch t.vals[m].key {
		case "withClause":
		case "intoClause":
			w.target(t.member(m, "rel"))
		case "larg", "rarg":
			w.selectStmt(m) // typed SelectStmt fields: no Node wrapper
		default:
			w.visit(m)
		}
	}
	w.ctes, w.mode = w.ctes[:mark], mode
}

// modify walks an INSERT, UPDATE, DELETE or MERGE: its target is written, everything else read.
func (w *walker) modify(body int32) {
	mark, mode := len(w.ctes), w.mode
	w.mode = modeRead
	w.with(w.t.member(body, "withClause"))
	w.target(w.t.member(body, "relation"))
	w.members(body, "withClause", "relation")
	w.ctes, w.mode = w.ctes[:mark], mode
}

// with walks the CTE bodies of a WITH clause and leaves all its names in scope; the caller
// drops them when it leaves the statement. PostgreSQL's scoping: in WITH RECURSIVE every name
// is visible in every body; otherwise a body sees only the names before it.
func (w *walker) with(wc int32) {
	if wc < 0 {
		return
	}
	t := w.t
	recursive := t.text(wc, "recursive") == "true"
	ctes := t.member(wc, "ctes")
	if ctes < 0 {
		return
	}
	if recursive {
		for _, c := range t.items(ctes) {
			if _, cte := t.node(c); cte >= 0 {
				w.ctes = append(w.ctes, t.text(cte, "ctename"))
			}
		}
	}
	for _, c := range t.items(ctes) {
		_, cte := t.node(c)
		if cte < 0 {
			continue
		}
		w.members(cte, "", "")
		if !recursive {
			w.ctes = append(w.ctes, t.text(cte, "ctename"))
		}
	}
}

// explainAnalyze reports whether EXPLAIN's options run the statement.
func explainAnalyze(t *tree, opts int32) bool {
	on := false
	if opts < 0 {
		return false
	}
	for _, o := range t.items(opts) {
		if typ, d := t.node(o); typ == "DefElem" && t.text(d, "defname") == "analyze" {
			on = defBool(t, t.member(d, "arg"))
		}
	}
	return on
}

// defBool reads a DefElem's argument as PostgreSQL's defGetBoolean does: no argument is true.
// Zero values are left out of the JSON, so {"Integer": {}} is 0 and {"Boolean": {}} false.
func defBool(t *tree, arg int32) bool {
	typ, body := t.node(arg)
	switch typ {
	case "":
		return true
	case "Integer":
		return t.text(body, "ival") != ""
	case "Boolean":
		return t.text(body, "boolval") == "true"
	case "String":
		switch t.text(body, "sval") {
		case "false", "off", "no", "0", "f", "n":
			return false
		}
	}
	return true
}
