package classify

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Kind is what a statement does. Kinds are ordered from weakest to strongest, and a text of
// several statements has the strongest kind among them:
//
//	KindRead < KindUtility < KindSession < KindTransaction < KindDDL < KindWrite
//
// so that any write in a text makes the whole text a write.
type Kind uint8

const (
	// KindRead is a query that only reads: SELECT, VALUES, TABLE, and WITH around them.
	// A read may still call a volatile function with side effects (nextval, pg_advisory_lock);
	// Cacheable and the volatility oracle decide about those.
	KindRead Kind = iota
	// KindUtility runs something other than a query and changes no rows: EXPLAIN without ANALYZE,
	// VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK, COPY ... TO.
	KindUtility
	// KindSession reads or changes session state: SET, RESET, SHOW, DISCARD, LISTEN, UNLISTEN,
	// PREPARE, DEALLOCATE, DECLARE, FETCH, MOVE, CLOSE, LOAD.
	KindSession
	// KindTransaction is transaction control: BEGIN, START TRANSACTION, COMMIT, ROLLBACK,
	// SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED,
	// SET CONSTRAINTS.
	KindTransaction
	// KindDDL changes the schema: CREATE, ALTER, DROP, GRANT, COMMENT, ...
	KindDDL
	// KindWrite changes rows or has effects that must reach the origin: INSERT, UPDATE, DELETE,
	// MERGE, TRUNCATE, COPY ... FROM, SELECT INTO, REFRESH MATERIALIZED VIEW, data-modifying
	// CTEs, EXPLAIN ANALYZE of any of these, NOTIFY, DO, CALL, EXECUTE, and text that does not parse.
	KindWrite
)

var kindNames = [...]string{
	KindRead:        "read",
	KindUtility:     "utility",
	KindSession:     "session",
	KindTransaction: "transaction",
	KindDDL:         "ddl",
	KindWrite:       "write",
}

// String returns the kind's lower-case name, fit for a metric label.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Statement is the classification of one SQL text, which may hold several statements.
//
// Table names are as written: schema-qualified only if the query qualified them
// ("public.users" and "users" are different names here; resolving them through search_path is
// the consumer's business), lower-cased by the parser unless quoted ("public.User" for
// "public"."User"). Views count under their own name, not the tables behind them. The names of
// common table expressions are not tables and never appear.
//
// A Statement says what the text names, not everything running it may do. Triggers, rules and
// foreign keys with ON DELETE/UPDATE CASCADE write tables the text doesn't name; a view reads
// tables it doesn't name; and a volatile function may write anything, even from a KindRead.
// Whoever invalidates caches from Writes must cover those from the catalog or by treating them
// as writes to everything.
type Statement struct {
	Kind       Kind // of the whole text: the strongest of its statements' kinds
	Statements int  // how many statements the text holds; 0 for empty text or only comments

	// Reads are the tables read, sorted and deduplicated: FROM and JOIN, subqueries, CTE bodies,
	// the sources of INSERT ... SELECT, UPDATE ... FROM, DELETE ... USING and MERGE ... USING.
	// The target of a write is in Writes only. Utility statements (VACUUM t, LOCK t, EXPLAIN)
	// list the tables they inspect here.
	Reads []string
	// Writes are the tables whose rows or definition may change, sorted and deduplicated: the
	// targets of INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, SELECT INTO and
	// data-modifying CTEs, and the relations that CREATE, ALTER and DROP name.
	Writes []string
	// Functions are the functions called, sorted and deduplicated: lower-cased unless quoted,
	// schema-qualified only if written so. SQL keywords that are functions count under their
	// keyword (current_date, current_timestamp, localtime, current_user, ...); a string literal
	// that PostgreSQL reads as the current time ('now', 'today', 'tomorrow', 'yesterday') counts
	// as now; a TABLESAMPLE method counts under its name (system, bernoulli).
	Functions []string
	// Sequences are the sequences that nextval and setval calls advance or set, sorted and
	// deduplicated, named as regclass reads the literal argument ('public.S' is "public.s");
	// "*" stands for a call whose argument is not a literal, which may change any sequence.
	// A read that lists any is still KindRead (and not cacheable: both functions are volatile),
	// but it changes what a read of the sequence (SELECT last_value FROM s) returns.
	Sequences []string

	Locking    bool // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE anywhere, or LOCK TABLE
	ParseError bool // the text does not parse: Kind is KindWrite and AllTables is set
	// AllTables says the writes may touch any table, not only those in Writes: text that does not
	// parse, DO, CALL, EXECUTE, DDL on anything but tables, views, sequences and materialized
	// views, DROP/TRUNCATE ... CASCADE, COPY ... PROGRAM, COMMIT PREPARED.
	AllTables bool
}

// Classify parses sql with PostgreSQL's own parser (libpg_query) and reports what it does.
// It never fails: text that does not parse is a write that may touch anything.
// Safe for concurrent use.
func Classify(sql string) Statement {
	if strings.IndexByte(sql, 0) >= 0 {
		// libpg_query takes a C string and would see only the text before the NUL.
		return parseError(sql)
	}
	text, err := pg_query.ParseToJSON(sql)
	if err != nil {
		return parseError(sql)
	}
	t := trees.Get().(*tree)
	defer t.release()
	if t.parse(text) != nil {
		return parseError(sql)
	}
	w := walker{t: t}
	var s Statement
	if stmts := t.member(0, "stmts"); stmts >= 0 {
		for _, raw := range t.items(stmts) {
			s.Statements++
			if k := w.statement(t.member(raw, "stmt")); k > s.Kind {
				s.Kind = k
			}
		}
	}
	s.Reads = sortedSet(w.reads)
	s.Writes = sortedSet(w.writes)
	s.Functions = sortedSet(w.funcs)
	s.Sequences = sortedSet(w.seqs)
	s.Locking = w.locking
	s.AllTables = w.all
	return s
}

// parseError is the classification of text pg_query rejects: it runs on the origin only to fail
// there, but if our parser is wrong and the origin accepts it, it must count as a write to
// everything. The statement count comes from the session lexer, which splits on top-level
// semicolons without needing the text to parse.
func parseError(sql string) Statement {
	return Statement{Kind: KindWrite, Statements: max(Session(sql).Statements, 1), ParseError: true, AllTables: true}
}

// sortedSet sorts s and removes duplicates in place. A nil or empty s gives nil.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Cache statuses Cacheable reports, spelled like Hyperdrive's.
const (
	reasonParseError         = "parseerror"
	reasonMultipleStatements = "multiplestatements"
	reasonNotAQuery          = "notaquery"
	reasonUncacheable        = "uncacheable"
	reasonVolatile           = "volatile"
)

// Cacheable reports whether the result of s may be served from a cache. vol tells the volatility
// of a function by its name as it appears in Functions; a function it does not know (false, or a
// nil vol) counts as volatile. When ok is false, reason is the cache status to record:
//
//   - "parseerror": the text does not parse
//   - "multiplestatements": more than one statement
//   - "notaquery": not a read (a write, DDL, transaction control, session command, utility) or empty
//   - "uncacheable": a read that takes row locks (FOR UPDATE/SHARE) or reads a pg_temp table
//   - "volatile": it calls a function that is not IMMUTABLE
//
// The checks run in that order, so the reason is the first that applies.
func (s Statement) Cacheable(vol func(name string) (Volatility, bool)) (ok bool, reason string) {
	switch {
	case s.ParseError:
		return false, reasonParseError
	case s.Statements > 1:
		return false, reasonMultipleStatements
	case s.Statements == 0 || s.Kind != KindRead || len(s.Writes) > 0 || s.AllTables:
		return false, reasonNotAQuery
	case s.Locking || slices.ContainsFunc(s.Reads, isTemp):
		return false, reasonUncacheable
	}
	for _, f := range s.Functions {
		if vol == nil {
			return false, reasonVolatile
		}
		if v, known := vol(f); !known || v != Immutable {
			return false, reasonVolatile
		}
	}
	return true, ""
}
