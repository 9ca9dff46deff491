package classify

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	// The parser needs a value-expression implementation for literals and ? markers; this is
	// the lightweight one TiDB ships for parser users.
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// mysqlParsers holds parsers for reuse: a parser is not safe for concurrent use, and building
// one allocates its lexer tables.
var mysqlParsers = sync.Pool{New: func() any { return parser.New() }}

// parseMySQL parses sql with a pooled parser; done gives the parser back once the caller is
// through with the tree. The TiDB parser panics on some input (a decimal literal of more digits
// than its value driver holds): that is a parse error, and the parser, in a state nobody
// knows, is not reused.
func parseMySQL(sql string) (stmts []ast.StmtNode, done func(), err error) {
	p := mysqlParsers.Get().(*parser.Parser)
	done = func() { mysqlParsers.Put(p) }
	defer func() {
		if r := recover(); r != nil {
			stmts, done, err = nil, func() {}, fmt.Errorf("classify: the MySQL parser failed: %v", r)
		}
	}()
	stmts, _, err = p.ParseSQL(sql)
	return stmts, done, err
}

// ClassifyMySQL parses sql with the TiDB parser (MySQL's grammar) and reports what it does, in
// the same terms as Classify. It never fails: text that does not parse is a write that may
// touch anything.
//
// Table names are lower-cased (MySQL table names may be case-sensitive on the origin, so an
// invalidation by a lower-cased name covers more, never less) and schema-qualified only if
// written so. Writes lists every table a writing statement names, including those it only
// reads (UPDATE ... JOIN, INSERT ... SELECT): invalidating too much is safe. Session and user
// variables count as functions named "@name" and "@@name", which no volatility table knows, so
// a query reading them is never cacheable. Safe for concurrent use.
func ClassifyMySQL(sql string) Statement {
	if strings.Contains(sql, "/*M!") {
		// MariaDB runs what its executable comments hold; the parser reads them as comments.
		return parseError(sql)
	}
	stmts, done, err := parseMySQL(sql)
	// The tree lives in the parser's memory: it goes back to the pool only after the walk.
	defer done()
	if err != nil {
		return parseError(sql)
	}
	var s Statement
	v := &mysqlVisitor{}
	for _, n := range stmts {
		s.Statements++
		k, writes, all := mysqlKind(n)
		if k > s.Kind || s.Statements == 1 {
			s.Kind = max(s.Kind, k)
		}
		s.AllTables = s.AllTables || all
		v.tables = v.tables[:0]
		n.Accept(v)
		if writes {
			s.Writes = append(s.Writes, v.tables...)
		} else {
			s.Reads = append(s.Reads, v.tables...)
		}
	}
	s.Locking = v.locking
	s.Reads, s.Writes, s.Functions = sortedSet(s.Reads), sortedSet(s.Writes), sortedSet(v.functions)
	return s
}

// mysqlKind says what one statement does, whether the tables it names are written, and whether
// it may write tables it does not name.
func mysqlKind(n ast.StmtNode) (k Kind, writes, allTables bool) {
	switch n := n.(type) {
	case *ast.SelectStmt:
		if n.SelectIntoOpt != nil { // INTO OUTFILE / DUMPFILE / @var: an effect, never a cacheable read
			return KindSession, false, false
		}
		return KindRead, false, false
	case *ast.SetOprStmt:
		return KindRead, false, false
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.LoadDataStmt, *ast.ImportIntoStmt,
		*ast.NonTransactionalDMLStmt:
		return KindWrite, true, false
	case *ast.CallStmt, *ast.ExecuteStmt, *ast.DoStmt:
		return KindWrite, true, true
	case *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		return KindTransaction, false, false
	case *ast.SetStmt, *ast.UseStmt, *ast.PrepareStmt, *ast.DeallocateStmt,
		*ast.LockTablesStmt, *ast.UnlockTablesStmt, *ast.SetRoleStmt, *ast.SetSessionStatesStmt:
		return KindSession, false, false
	case *ast.ShowStmt, *ast.ExplainStmt, *ast.ExplainForStmt, *ast.AnalyzeTableStmt, *ast.KillStmt,
		*ast.FlushStmt, *ast.HelpStmt:
		return KindUtility, false, false
	case *ast.TruncateTableStmt, *ast.DropTableStmt, *ast.AlterTableStmt, *ast.RenameTableStmt,
		*ast.CreateTableStmt, *ast.CreateViewStmt, *ast.CreateIndexStmt, *ast.DropIndexStmt,
		*ast.OptimizeTableStmt, *ast.RepairTableStmt:
		return KindDDL, true, false
	case ast.DDLNode:
		// CREATE/DROP DATABASE, sequences, procedures: may change what any table name means.
		return KindDDL, true, true
	}
	// Anything else (GRANT, users, admin statements): treat as a write to everything.
	return KindWrite, true, true
}

// mysqlVisitor collects the tables, functions and locking clauses of a statement tree.
type mysqlVisitor struct {
	tables    []string
	functions []string
	locking   bool
}

func (v *mysqlVisitor) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.TableName:
		name := n.Name.L
		if n.Schema.L != "" {
			name = n.Schema.L + "." + name
		}
		v.tables = append(v.tables, name)
	case *ast.FuncCallExpr:
		v.functions = append(v.functions, n.FnName.L)
	case *ast.VariableExpr:
		prefix := "@"
		if n.IsSystem {
			prefix = "@@"
		}
		v.functions = append(v.functions, prefix+strings.ToLower(n.Name))
	case *ast.SelectStmt:
		if n.LockInfo != nil && n.LockInfo.LockType != ast.SelectLockNone {
			v.locking = true
		}
	case *ast.LockTablesStmt:
		v.locking = true
	}
	return n, false
}

func (v *mysqlVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// MySQLVolatility knows the volatility of MySQL and MariaDB built-in functions by the
// lower-case name ClassifyMySQL reports. It reports false for any other name (stored functions,
// variables), which Cacheable counts as volatile.
//
// MySQL says "deterministic" where PostgreSQL says immutable; functions that read the clock or
// the session (NOW, DATABASE, LAST_INSERT_ID) are stable here, and so are those whose answer
// depends on a session setting (FROM_UNIXTIME and UNIX_TIMESTAMP read time_zone).
func MySQLVolatility(name string) (Volatility, bool) {
	v, ok := mysqlVolatility[name]
	return v, ok
}

var mysqlVolatility = func() map[string]Volatility {
	m := map[string]Volatility{}
	for _, f := range strings.Fields(`abs acos asin atan atan2 ceil ceiling conv cos cot crc32 degrees exp floor
		ln log log10 log2 mod pi pow power radians round sign sin sqrt tan truncate
		ascii bin bit_length char char_length character_length concat concat_ws elt export_set field
		find_in_set hex unhex insert instr lcase lower left length locate lpad ltrim make_set mid oct
		octet_length ord position quote regexp_instr regexp_like regexp_replace regexp_substr repeat
		replace reverse right rpad rtrim soundex space strcmp substr substring substring_index trim
		ucase upper weight_string
		coalesce greatest least if ifnull nullif isnull interval
		md5 sha sha1 sha2 to_base64 from_base64 compress uncompress uncompressed_length inet_aton
		inet_ntoa inet6_aton inet6_ntoa is_ipv4 is_ipv6 bit_count
		json_array json_array_append json_array_insert json_contains json_contains_path json_depth
		json_extract json_insert json_keys json_length json_merge json_merge_patch json_merge_preserve
		json_object json_overlaps json_quote json_remove json_replace json_search json_set json_type
		json_unquote json_valid json_value
		adddate addtime date date_add date_format date_sub datediff day dayname dayofmonth dayofweek
		dayofyear extract from_days hour last_day makedate maketime microsecond minute month monthname
		period_add period_diff quarter sec_to_time second str_to_date subdate subtime time time_format
		time_to_sec timediff timestamp timestampadd timestampdiff to_days to_seconds week weekday
		weekofyear year yearweek`) {
		m[f] = Immutable
	}
	for _, f := range strings.Fields(`now current_timestamp localtime localtimestamp curdate current_date
		curtime current_time utc_date utc_time utc_timestamp unix_timestamp from_unixtime convert_tz
		database schema user current_user session_user system_user connection_id version found_rows
		row_count last_insert_id current_role charset collation coercibility`) {
		m[f] = Stable
	}
	for _, f := range strings.Fields(`rand uuid uuid_short sleep get_lock release_lock release_all_locks
		is_free_lock is_used_lock benchmark sysdate master_pos_wait nextval lastval setval`) {
		m[f] = Volatile
	}
	return m
}()
