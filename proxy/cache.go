package proxy

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// Caching is a database's result-cache policy.
type Caching struct {
	// Disabled turns the cache off for the database.
	Disabled bool
	// MaxAge is how long an answer may be served; 0 means 60s.
	MaxAge time.Duration
	// StaleWhileRevalidate is how long after MaxAge an answer is still served while one
	// background refresh runs; 0 means none.
	StaleWhileRevalidate time.Duration
	// MaxResultBytes bounds a cached answer; larger ones pass through uncached. 0 means 50 MiB.
	MaxResultBytes int
}

// unitPlan is what the edge decided about one batch of client messages.
type unitPlan struct {
	status   cache.Status
	key      []byte
	query    string                 // the statement whose answer the key names
	stmt     sessionstate.Statement // ...and its parameter types, to prepare it again for a refresh
	stmtName string
	// selfContained: the batch prepares what it binds, so it can run as it is on a new session.
	selfContained bool
	tables        []string // read by a cacheable query, once admitted
	maxAge        time.Duration
	writes        []string // written by the batch
	writeAll      bool     // the batch may write anything
	endsTx        bool     // the batch may end a transaction block (COMMIT, ROLLBACK, unparsed)
	skip          bool     // the batch prepares or closes statements the pool must hear of
	// Of the statements the batch runs, how many, and how many only read; whole: the batch is
	// a unit of its own, begun and ended in it (for retrying a read elsewhere).
	stmts, reads int
	whole        bool
	// settings are the session-level SETs and RESETs the batch makes; badSettings: it makes
	// some the session can't follow (in a transaction block, beside other statements).
	settings    []classify.Setting
	badSettings bool
	settingSQLs int  // statements that are SETs, RESETs, DISCARD ALL or DEALLOCATE ALL
	drops       bool // the batch deallocates every prepared statement (DISCARD ALL, DEALLOCATE ALL)
}

// cacheState is a session's part of caching: the keys' base and the writes to invalidate. It
// lives with the session's reader goroutine. The session's state the keys cover (settings,
// prepared statements, transaction status) is the session's sessionstate.PG (session.state).
type cacheState struct {
	baseKey []byte // database, user and startup settings
	keyBase []byte // baseKey and the settings the session made since
	// Writes of the transaction not yet over: invalidated before each answer goes to the
	// client, forgotten when the session is out of a transaction.
	written  []string
	writeAll bool
}

func newCacheState(db string, params map[string]string) *cacheState {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != link.ClientKeyParam { // a role's secret: the key has the role already
			names = append(names, k)
		}
	}
	sort.Strings(names)
	kb := append([]byte(db), 0)
	for _, k := range names {
		kb = append(append(append(append(kb, k...), '='), params[k]...), 0)
	}
	return &cacheState{baseKey: kb, keyBase: kb}
}

// rekey makes the keys' base from the startup settings and the settings in force.
func (cs *cacheState) rekey(st *sessionstate.Settings) {
	kb := slices.Clip(cs.baseKey)
	for _, set := range st.Sorted() {
		kb = append(append(append(append(append(kb, 1), set.Name...), 1), set.Stmt...), 0)
	}
	cs.keyBase = kb
}

// plan reads a batch of client messages: what it writes, and whether it is one cacheable
// unit, with its key.
func (sess *session) plan(frames []byte, pinned bool) unitPlan {
	cs, st := sess.cache, sess.state
	p := unitPlan{status: cache.NotAQuery}
	sc := sess.scanUnit(frames, &p)
	for _, q := range sc.sqls {
		sess.noteWrites(&p, q)
	}
	p.stmts = len(sc.sqls)
	last := byte(0)
	if len(sc.shape) > 0 {
		last = sc.shape[len(sc.shape)-1]
	}
	continued := st.MidUnit
	st.MidUnit = last != 'S' && last != 'Q'
	p.whole = !continued && !st.MidUnit && sc.units == 1
	// Settings are followed only for a whole unit of nothing but them (sessionstate.PG).
	st.StageBatch(p.settings, p.drops, p.whole && !p.badSettings && p.settingSQLs == len(sc.sqls))
	if why, ok := sess.keyable(&sc, continued, pinned); !ok {
		p.status = why
		return p
	}
	q := sc.stmt.Query
	maxAge, off := commentControl(q, sess.caching.MaxAge)
	if off {
		p.status = cache.Disabled
		return p
	}
	parsedHere := false
	for _, n := range sc.parsed {
		parsedHere = parsedHere || n == sc.stmtName
	}
	// Only a key that misses needs the full parse: an entry exists only for a statement that
	// passed Cacheable (see admit).
	key := append(bytes.Clone(cs.keyBase), sc.shape...)
	key = append(append(key, 0), q...)
	key = append(append(key, 0), sc.stmt.Types...)
	key = append(append(key, 0), sc.bind...)
	p.status, p.key, p.query, p.maxAge = cache.Miss, key, q, maxAge
	p.stmt, p.stmtName, p.selfContained = sc.stmt, sc.stmtName, sc.simple || parsedHere
	return p
}

// unitScan is what one pass over a batch's messages finds (scanUnit).
type unitScan struct {
	shape    []byte                 // the message types, in order: part of the key
	sqls     []string               // the statements the batch runs (Query, or the statement a Bind binds)
	bind     []byte                 // the last Bind's parameters and formats
	stmt     sessionstate.Statement // the statement run last
	executes int                    // Executes (a row limit counts more: portal state the cache can't replay)
	units    int                    // units the batch holds or touches (Sync, Query; more for COPY, Flush...)
	simple   bool                   // the batch is a simple Query
	parsed   []string               // statements this batch prepares
	stmtName string                 // the statement the batch binds
}

// scanUnit reads the batch's messages: it follows the statements the client prepares and
// closes (sessionstate.PG) and notes that the pool side must be told of them on a hit (p.skip).
func (sess *session) scanUnit(frames []byte, p *unitPlan) unitScan {
	ss := sess.state
	ss.BeginBatch()
	var sc unitScan
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		sc.shape = append(sc.shape, f.Type)
		switch f.Type {
		case 'Q':
			q, _, _ := cutCString(f.Body)
			sc.sqls = append(sc.sqls, q)
			sc.stmt, sc.simple = sessionstate.Statement{Query: q}, true
			sc.units++
			if len(ss.Unnamed.Types) > 0 { // the parameter count at least: one was parsed
				// A simple Query drops the unnamed statement, answered from the cache or not.
				ss.Unnamed, p.skip = sessionstate.Statement{}, true
			}
		case 'P':
			sc.parsed = append(sc.parsed, parse(ss, f.Body))
			p.skip = true
		case 'B':
			_, body, _ := cutCString(f.Body)
			name, tail, _ := cutCString(body)
			sc.stmtName = name
			if st, ok := ss.Statement(name); ok && !st.Unsure {
				sc.sqls = append(sc.sqls, st.Query)
				sc.stmt, sc.bind = st, tail
			}
		case 'C':
			closeStmt(ss, f.Body)
			p.skip = true
		case 'E':
			sc.executes++
			if _, tail, _ := cutCString(f.Body); len(tail) != 4 || binary.BigEndian.Uint32(tail) != 0 {
				sc.executes += 2 // a row limit: portal state the cache can't replay
			}
		case 'S':
			sc.units++
		case 'D':
		default:
			sc.units += 2 // COPY data, Flush, FunctionCall...: never from the cache
		}
	}
	return sc
}

// parse follows a Parse message's statement and returns its name.
func parse(ss *sessionstate.PG, body []byte) string {
	name, rest, _ := cutCString(body)
	q, tail, _ := cutCString(rest)
	ss.Prepare(name, sessionstate.Statement{Query: q, Types: bytes.Clone(tail)}) // tail is in the reader's buffer
	return name
}

// closeStmt follows a Close message: a statement closed is forgotten.
func closeStmt(ss *sessionstate.PG, body []byte) {
	if len(body) > 0 && body[0] == 'S' {
		name, _, _ := cutCString(body[1:])
		ss.Close(name)
	}
}

// keyable reports whether the batch may be answered from the cache by its key: one whole unit
// running one statement once, outside a transaction, in a session whose state the key covers;
// else the cache status that says why not (NotAQuery for a batch that is no single query).
func (sess *session) keyable(sc *unitScan, continued, pinned bool) (cache.Status, bool) {
	st := sess.state
	switch {
	case sess.caching.Disabled:
		return cache.Disabled, false
	case continued || sc.units != 1 || st.MidUnit || (!sc.simple && sc.executes != 1) || len(sc.sqls) != 1:
		return cache.NotAQuery, false
	case st.Tx != 'I':
		return cache.Transaction, false
	case st.Dirty || pinned:
		return cache.Uncacheable, false
	}
	return cache.Miss, true
}

// admit decides, with the full parse, whether a missed unit's answer may be kept, and which
// tables it reads; it turns p's status from miss into the reason when not.
func (sess *session) admit(p *unitPlan) bool {
	sess.volAt = time.Time{} // ask for the newest catalog: functions may have changed
	st := sess.s.classify(p.query)
	if ok, reason := st.Cacheable(sess.volatility); !ok {
		p.status = cache.Status(reason)
		if p.status == "" {
			p.status = cache.Uncacheable
		}
		return false
	}
	sess.catalog()
	p.tables = withRelated(st.Reads, sess.rel)
	return true
}

// withRelated returns the tables a cached read of tables is kept under, so that a write to any
// of them invalidates it: the tables, every relation whose rows change together with one of
// them (a view's tables, partitions, cascading foreign keys), and the tables whose writes may
// change any (triggers, rules). Names compare by their last part, as the cache's do.
func withRelated(tables []string, rel link.Related) []string {
	if len(rel.Groups) == 0 && len(rel.AnyTable) == 0 {
		return tables
	}
	out := slices.Clone(tables)
	for _, g := range rel.Groups {
		for _, t := range tables {
			if i := strings.LastIndexByte(t, '.'); i >= 0 {
				t = t[i+1:]
			}
			if slices.Contains(g, strings.Trim(t, `"`)) {
				out = append(out, g...)
				break
			}
		}
	}
	out = append(out, rel.AnyTable...)
	slices.Sort(out)
	return slices.Compact(out)
}

// noteWrites adds what q writes to p, and marks the session dirty when q changes its settings.
// A plain SELECT is read by the lexer alone (its calls checked against the catalog); anything
// else gets the full parse, which names the tables it writes.
func (sess *session) noteWrites(p *unitPlan, q string) {
	if e := classify.Session(q); len(e.Settings) > 0 || e.DropsPrepared {
		// Followed only for a batch of nothing but SETs, RESETs, DISCARD ALL or DEALLOCATE ALL
		// outside a transaction block: what such a batch changed is known from its answer alone.
		p.settings = append(p.settings, e.Settings...)
		p.drops = p.drops || e.DropsPrepared
		if sess.begin.held != nil || !sess.state.Followable(e) {
			p.badSettings = true
		} else {
			p.settingSQLs++
		}
	}
	if calls, ok := classify.PlainRead(q); ok && sess.callsWriteNothing(calls) {
		if !sess.callsVolatile(calls) {
			p.reads++
		}
		return
	}
	st := sess.s.classify(q)
	if st.Kind == classify.KindRead && !st.ParseError && !sess.callsVolatile(st.Functions) {
		p.reads++
	}
	p.endsTx = p.endsTx || st.Kind == classify.KindTransaction || st.ParseError
	switch st.Kind {
	case classify.KindWrite, classify.KindDDL:
		p.writes = append(p.writes, st.Writes...)
		p.writeAll = p.writeAll || st.AllTables || st.ParseError
	}
	sess.noteCalls(p, st)
}

// callsVolatile reports whether any of fns is VOLATILE or unknown: a statement calling one
// (nextval, a user function) is not run a second time, even if it reads only.
func (sess *session) callsVolatile(fns []string) bool {
	for _, fn := range fns {
		if v, ok := sess.volatility(fn); !ok || v == classify.Volatile {
			return true
		}
	}
	return false
}

// callsWriteNothing reports, for the calls the lexer saw in a plain SELECT (every word before a
// parenthesis, so IN and EXISTS too), whether none of them may write: a built-in that writes
// nothing cached, or a function the catalog knows is not VOLATILE. Anything else gets the full
// parse, which tells calls from keywords and names nextval's sequence.
func (sess *session) callsWriteNothing(calls []string) bool {
	for _, fn := range calls {
		if classify.SequenceFunction(fn) {
			return false
		}
		if rels, all, known := sess.callWrites(fn); len(rels) > 0 || all || !known {
			return false
		}
	}
	return true
}

// noteCalls adds to p what the functions st calls may write: the sequences nextval and setval
// advance, and for each VOLATILE function of the origin's own, the relations its body writes,
// as the pool read them from the catalog; a function the catalog does not know (made since it
// was read) may write anything (issue 12: writes hidden in function calls).
func (sess *session) noteCalls(p *unitPlan, st classify.Statement) {
	for _, seq := range st.Sequences {
		if seq == "*" {
			p.writeAll = true
			continue
		}
		p.writes = append(p.writes, seq)
	}
	for _, fn := range st.Functions {
		rels, all, known := sess.callWrites(fn)
		p.writes = append(p.writes, rels...)
		p.writeAll = p.writeAll || all || !known
	}
}

// callWrites says what calling fn may write: relations, or anything (all). known is false for a
// name neither the built-ins nor the origin's catalog know. Built-ins write nothing cached
// (nextval's sequence is the caller's business), and so does every function of an origin
// without a catalog (D1: SQLite's functions write nothing).
func (sess *session) callWrites(fn string) (rels []string, all, known bool) {
	if _, builtin := classify.BuiltinVolatility(fn); builtin {
		return nil, false, true
	}
	cat := sess.catalog()
	if len(cat) == 0 {
		return nil, false, true
	}
	base := fn
	if i := strings.LastIndexByte(fn, '.'); i >= 0 {
		base = fn[i+1:]
	}
	v, ok := cat[base]
	switch {
	case !ok:
		return nil, false, false
	case v != 'v':
		return nil, false, true
	}
	rels = sess.rel.Writers[base] // pg_catalog's own volatile functions are not listed: nothing
	if slices.Contains(rels, "*") {
		return nil, true, true
	}
	return rels, false, true
}

// catalog returns the origin's function volatilities, asking the pool side again at most once a
// second: the pool re-reads them after a statement changes functions.
func (sess *session) catalog() map[string]byte {
	if now := time.Now(); now.Sub(sess.volAt) > time.Second {
		sess.volAt = now
		if prof, err := sess.s.cfg.Transport.Profile(sess.ctx, sess.db); err == nil {
			sess.vol, sess.rel = prof.Volatility, prof.Related
		}
	}
	return sess.vol
}

// classifications memoizes classify.Classify by query text: applications repeat a bounded set
// of texts, and parsing costs microseconds on every unit otherwise.
type classifications struct {
	mu sync.Mutex
	m  map[string]classify.Statement
}

const maxClassifications = 10000

// classify returns the classification of q, parsing it only the first time it is seen.
func (s *Server) classify(q string) classify.Statement {
	key, shaped := classify.ShapeKey(q, classify.Numbers) // one parse per shape, not per text
	if !shaped {
		key = q
	}
	c := &s.classified
	c.mu.Lock()
	st, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return st
	}
	st = classify.Classify(q)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxClassifications {
		c.m = make(map[string]classify.Statement) // start over rather than track recency
	}
	c.m[key] = st
	c.mu.Unlock()
	return st
}

// volatility is the oracle classify.Cacheable asks: the origin's pg_proc first, then the
// built-in list; unknown functions are volatile.
func (sess *session) volatility(name string) (classify.Volatility, bool) {
	base := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base = name[i+1:]
	}
	switch sess.catalog()[base] {
	case 'i':
		return classify.Immutable, true
	case 's':
		return classify.Stable, true
	case 'v':
		return classify.Volatile, true
	}
	return classify.BuiltinVolatility(name)
}

// commentControl reads a leading /* slipstream: cache=off */ or /* slipstream: max_age=5 */.
func commentControl(q string, maxAge time.Duration) (time.Duration, bool) {
	q = strings.TrimLeft(q, " \t\r\n")
	if !strings.HasPrefix(q, "/*") {
		return maxAge, false
	}
	end := strings.Index(q, "*/")
	if end < 0 {
		return maxAge, false
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(q[2:end]), "slipstream:")
	if !ok {
		return maxAge, false
	}
	for _, opt := range strings.Fields(body) {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "cache":
			if v == "off" {
				return maxAge, true
			}
		case "max_age":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				maxAge = min(time.Duration(n)*time.Second, maxAge)
			}
		}
	}
	return maxAge, maxAge <= 0
}

// cutCString splits a NUL-terminated string off b.
func cutCString(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// scanAnswers reports the status of the last ReadyForQuery in a run of backend messages (0 if
// none) and whether an ErrorResponse is among them.
func scanAnswers(frames []byte) (status byte, failed bool) {
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		switch f.Type {
		case 'Z':
			if len(f.Body) > 0 {
				status = f.Body[0]
			}
		case 'E':
			failed = true
		}
	}
	return status, failed
}

// beforeAnswer runs before a chunk of answers goes to the client: at each ReadyForQuery, the
// writes made so far are invalidated (so no client reads an older answer after this one), and
// forgotten once the transaction is over.
func (sess *session) beforeAnswer(chunk []byte) (status byte, failed bool) {
	cs := sess.cache
	status, failed = scanAnswers(chunk)
	if sess.state.Answered(status, failed) {
		cs.rekey(&sess.state.Settings)
	}
	if status == 0 {
		return 0, failed
	}
	if c := sess.s.cfg.Cache; c != nil && (len(cs.written) > 0 || cs.writeAll) {
		c.Invalidate(sess.db, cs.written, cs.writeAll)
	}
	if status == 'I' {
		cs.written, cs.writeAll = cs.written[:0], false
	}
	return status, failed
}

// reportWrites tells the pool end, with the batch about to be sent, what the session's
// transaction has written, when the batch may make those writes visible: outside a transaction
// block, or when it may end one. The pool end then has every other edge invalidate them before
// the batch's last answer leaves it, as beforeAnswer does on this edge.
func (sess *session) reportWrites(p *unitPlan) {
	cs := sess.cache
	if len(cs.written) == 0 && !cs.writeAll || sess.state.Tx != 'I' && !p.endsTx {
		return
	}
	if r := sess.stream.Caps().Writes; r != nil {
		r.ReportWrites(cs.written, cs.writeAll)
	}
}
