package classify

import (
	"slices"
	"sync"
	"testing"
)

func TestClassifyMySQL(t *testing.T) {
	for _, tc := range []struct {
		sql          string
		kind         Kind
		reads        []string
		writes       []string
		functions    []string
		locking, all bool
		cacheable    bool
	}{
		{sql: "SELECT id, name FROM users WHERE id = ?", kind: KindRead, reads: []string{"users"}, cacheable: true},
		{sql: "select u.id from Users u join shop.Orders o on o.user_id = u.id", kind: KindRead,
			reads: []string{"shop.orders", "users"}, cacheable: true},
		{sql: "SELECT a FROM t1 UNION SELECT b FROM t2", kind: KindRead, reads: []string{"t1", "t2"}, cacheable: true},
		{sql: "SELECT * FROM t WHERE id IN (SELECT t_id FROM u)", kind: KindRead, reads: []string{"t", "u"}, cacheable: true},
		{sql: "SELECT CONCAT(first, ' ', last), LOWER(email) FROM people", kind: KindRead,
			reads: []string{"people"}, functions: []string{"concat", "lower"}, cacheable: true},
		{sql: "SELECT NOW()", kind: KindRead, functions: []string{"now"}},
		{sql: "SELECT RAND() FROM t", kind: KindRead, reads: []string{"t"}, functions: []string{"rand"}},
		{sql: "SELECT @x", kind: KindRead, functions: []string{"@x"}},
		{sql: "SELECT @@session.sql_mode", kind: KindRead, functions: []string{"@@sql_mode"}},
		{sql: "SELECT my_stored_fn(id) FROM t", kind: KindRead, reads: []string{"t"}, functions: []string{"my_stored_fn"}},
		{sql: "SELECT * FROM t WHERE id = 1 FOR UPDATE", kind: KindRead, reads: []string{"t"}, locking: true},
		{sql: "SELECT * FROM t LOCK IN SHARE MODE", kind: KindRead, reads: []string{"t"}, locking: true},
		// The TiDB parser does not take INTO @var; what does not parse is a write to everything.
		{sql: "SELECT id INTO @v FROM t LIMIT 1", kind: KindWrite, all: true},
		{sql: "SELECT id FROM t INTO OUTFILE '/tmp/x'", kind: KindSession, reads: []string{"t"}},
		{sql: "INSERT INTO t (a) VALUES (?)", kind: KindWrite, writes: []string{"t"}},
		{sql: "INSERT INTO t SELECT * FROM u", kind: KindWrite, writes: []string{"t", "u"}},
		{sql: "REPLACE INTO t VALUES (1)", kind: KindWrite, writes: []string{"t"}},
		{sql: "UPDATE t JOIN u ON t.id = u.id SET t.a = u.a", kind: KindWrite, writes: []string{"t", "u"}},
		{sql: "DELETE t FROM t JOIN u ON t.id = u.id", kind: KindWrite, writes: []string{"t", "u"}},
		{sql: "BEGIN", kind: KindTransaction},
		{sql: "START TRANSACTION READ ONLY", kind: KindTransaction},
		{sql: "COMMIT", kind: KindTransaction},
		{sql: "SET NAMES utf8mb4", kind: KindSession},
		{sql: "SET @@session.sql_mode = 'ANSI'", kind: KindSession},
		{sql: "USE shop", kind: KindSession},
		{sql: "LOCK TABLES t WRITE", kind: KindSession, reads: []string{"t"}, locking: true},
		{sql: "SHOW TABLES", kind: KindUtility},
		{sql: "CREATE TABLE t2 (id INT PRIMARY KEY)", kind: KindDDL, writes: []string{"t2"}},
		{sql: "ALTER TABLE t ADD COLUMN b INT", kind: KindDDL, writes: []string{"t"}},
		{sql: "TRUNCATE TABLE t", kind: KindDDL, writes: []string{"t"}},
		{sql: "DROP DATABASE shop", kind: KindDDL, all: true},
		{sql: "CALL refresh_totals()", kind: KindWrite, functions: []string{"refresh_totals"}, all: true},
		{sql: "SELEC oops", kind: KindWrite, all: true},
	} {
		s := ClassifyMySQL(tc.sql)
		if s.Kind != tc.kind || !slices.Equal(s.Reads, tc.reads) || !slices.Equal(s.Writes, tc.writes) ||
			!slices.Equal(s.Functions, tc.functions) || s.Locking != tc.locking || s.AllTables != tc.all {
			t.Errorf("%s:\n got kind %v reads %q writes %q functions %q locking %v all %v\nwant kind %v reads %q writes %q functions %q locking %v all %v",
				tc.sql, s.Kind, s.Reads, s.Writes, s.Functions, s.Locking, s.AllTables,
				tc.kind, tc.reads, tc.writes, tc.functions, tc.locking, tc.all)
		}
		if ok, reason := s.Cacheable(MySQLVolatility); ok != tc.cacheable {
			t.Errorf("%s: Cacheable = %v (%s), want %v", tc.sql, ok, reason, tc.cacheable)
		}
	}
}

func TestClassifyMySQLCountsStatements(t *testing.T) {
	s := ClassifyMySQL("SELECT 1; UPDATE t SET a = 1")
	if s.Statements != 2 || s.Kind != KindWrite || !slices.Equal(s.Writes, []string{"t"}) {
		t.Fatalf("multi-statement text: %+v", s)
	}
	if ok, reason := s.Cacheable(MySQLVolatility); ok || reason != reasonMultipleStatements {
		t.Fatalf("Cacheable = %v %q, want multiplestatements", ok, reason)
	}
}

// TestMariaDBExecutableCommentsAreNotComments: MariaDB runs /*M! ... */ as SQL, which the
// parser reads as a comment: such a text is a write of anything, never cached.
func TestMariaDBExecutableCommentsAreNotComments(t *testing.T) {
	s := ClassifyMySQL("/*M!100100 UPDATE t SET a = 1 */")
	if s.Kind != KindWrite || !s.AllTables {
		t.Errorf("/*M! UPDATE */: kind %v, all tables %v; want a write of anything", s.Kind, s.AllTables)
	}
	if ok, _ := ClassifyMySQL("SELECT a FROM t /*M! FOR UPDATE */").Cacheable(MySQLVolatility); ok {
		t.Error("a read with a MariaDB executable comment is cacheable")
	}
}

func FuzzClassifyMySQL(f *testing.F) {
	for _, s := range []string{"SELECT 1", "INSERT INTO t VALUES (?)", "SELECT * FROM t FOR UPDATE", "BEGIN; COMMIT", "/* x */ SELECT @a",
		"SET time_zone = '+01:00'", "SET @@SESSION.sql_mode = CONCAT(@@sql_mode, ',ANSI'), @x = 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		s := ClassifyMySQL(sql)
		if s.ParseError && s.Kind != KindWrite {
			t.Fatalf("parse error classified as %v", s.Kind)
		}
		// What the session follows must come from text that parsed, one statement of it.
		if e := ClassifyMySQLSession(sql); (e.Vars || e.Names != "" || e.Use != "") && !e.Other && (s.ParseError || s.Statements != 1) {
			t.Fatalf("%q: session effect %+v from %d statements, parse error %v", sql, e, s.Statements, s.ParseError)
		}
	})
}

// TestClassifyMySQLConcurrently: parsers are pooled and a tree lives in its parser's memory;
// classifications running at once must not see each other's trees (go test -race).
func TestClassifyMySQLConcurrently(t *testing.T) {
	queries := []string{"SELECT a FROM t1 WHERE id = ?", "UPDATE t2 SET b = 1", "SELECT NOW() FROM t3 JOIN t4 ON t3.x = t4.y"}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				q := queries[(g+i)%len(queries)]
				want := ClassifyMySQL(q)
				if got := ClassifyMySQL(q); !slices.Equal(got.Reads, want.Reads) || !slices.Equal(got.Writes, want.Writes) {
					t.Errorf("%s: %+v then %+v", q, want, got)
					return
				}
				ClassifyMySQLSession(q)
			}
		}()
	}
	wg.Wait()
}
