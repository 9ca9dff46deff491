package proxy

import (
	"strings"
	"sync"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/classify"
)

// systemSchema reports whether a query reads the server's own schemas, whose contents change
// without writes (processlist, status, table statistics): never cached.
func systemSchema(reads []string, curDB string) bool {
	if isSystemSchema(curDB) {
		return true
	}
	for _, t := range reads {
		if i := strings.IndexByte(t, '.'); i >= 0 && isSystemSchema(t[:i]) {
			return true
		}
	}
	return false
}

func isSystemSchema(db string) bool {
	switch strings.ToLower(db) {
	case "information_schema", "performance_schema", "mysql", "sys":
		return true
	}
	return false
}

// mysqlClass is what the edge needs to know of one MySQL text.
type mysqlClass struct {
	st        classify.Statement
	eff       classify.MySQLSession
	cacheable bool
	reason    cache.Status // why not, when not
	writes    []string
	writeAll  bool
}

// classifyMySQL classifies q for the cache: whether its answer may be kept, what it writes
// (DDL, CALL, several statements that write, text that does not parse, and calls of stored
// functions, which may write anything: the whole database), and what it does to the session.
// LOAD DATA invalidates the table it loads.
func classifyMySQL(q string) mysqlClass {
	st := classify.ClassifyMySQL(q)
	c := mysqlClass{st: st}
	ok, reason := st.Cacheable(classify.MySQLVolatility)
	if ok && containsFold(q, "sql_calc_found_rows") {
		ok, reason = false, string(cache.Uncacheable) // sets what FOUND_ROWS() answers next
	}
	c.cacheable, c.reason = ok, cache.Status(reason)
	if !ok && c.reason == "" {
		c.reason = cache.Uncacheable
	}
	stored := false
	for _, f := range st.Functions {
		if _, known := classify.MySQLVolatility(f); !known && !strings.HasPrefix(f, "@") {
			stored = true
		}
	}
	switch st.Kind {
	case classify.KindWrite:
		c.writes = st.Writes
		c.writeAll = st.AllTables || st.ParseError || st.Statements > 1
	case classify.KindDDL:
		c.writeAll = true
	}
	c.writeAll = c.writeAll || stored
	if st.Kind == classify.KindSession || st.Kind == classify.KindDDL || st.ParseError || st.Statements > 1 ||
		strings.Contains(q, "@") {
		c.eff = classify.ClassifyMySQLSession(q)
	}
	// A procedure or stored function may set session variables; CALL, EXECUTE and DO run
	// what the edge can't see.
	c.eff.Other = c.eff.Other || stored || st.Kind == classify.KindWrite && st.AllTables
	return c
}

// mysqlClassifications memoizes classifyMySQL by query text, like classifications.
type mysqlClassifications struct {
	mu sync.Mutex
	m  map[string]mysqlClass
}

// get returns the classification of q, classifying it only the first time it is seen.
func (c *mysqlClassifications) get(q string) mysqlClass {
	c.mu.Lock()
	cls, ok := c.m[q]
	c.mu.Unlock()
	if ok {
		return cls
	}
	cls = classifyMySQL(q)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxClassifications {
		c.m = make(map[string]mysqlClass)
	}
	c.m[q] = cls
	c.mu.Unlock()
	return cls
}

// followableVars reports whether a statement that sets session system variables gives a new
// session the same values when run again there, and another session that runs the same text
// the same values: one statement, reading no table (SET time_zone = (SELECT ...) would differ
// as the table does), calling only deterministic functions (reading other variables,
// @@sql_mode, is fine).
func followableVars(st classify.Statement) bool {
	if st.Statements != 1 || st.ParseError || len(st.Reads) > 0 || len(st.Writes) > 0 || st.AllTables {
		return false
	}
	for _, f := range st.Functions {
		if strings.HasPrefix(f, "@") {
			continue
		}
		if v, known := classify.MySQLVolatility(f); !known || v == classify.Volatile {
			return false
		}
	}
	return true
}
