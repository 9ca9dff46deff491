package proxy

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// mysqlCache is a MySQL session's part of caching. It lives with the session's goroutine.
// The session's state its keys cover (current database, SET NAMES, session variables, prepared
// statements) is the session's sessionstate.MySQL (mysqlSession.state).
//
// A cacheable command is a COM_QUERY, or a COM_STMT_EXECUTE of a statement the client
// prepared, that reads with immutable functions only (classify.ClassifyMySQL), outside a
// transaction (the status flags of the last answer: autocommit on, not in a transaction), in
// a session that changed no setting the key does not cover. Its key: the database, the user,
// the capability flags and collation that shape answers, the current database, SET NAMES, and
// the query text (with a statement: its text, parameter types, null bitmap and values). The
// value is the answer's packets as the origin sent them, sequence ids from 1: a command
// packet always has sequence id 0, so a hit is written as it is. It is kept under the tables
// it reads and those the origin's information_schema relates to them (withRelated).
type mysqlCache struct {
	caching Caching
	label   string             // the database, for metrics
	ns      string             // the cache's name for the database: its origin, shared by every edge database on it
	keyBase []byte             // database, user, answer-shaping capabilities and collation
	hits    prometheus.Counter // this database's hits, looked up once
	key     []byte             // the current command's key; reused

	// The last command when it was answered from the cache, for replaying on the origin
	// before a command that reads what the previous statement left (see readsDiagnostics).
	replay        []byte
	replayStmt    *sessionstate.MySQLStatement
	replayTypesAt int

	// Writes of the transaction (or statement) not yet over: invalidated before each answer
	// goes to the client, forgotten when the session is out of a transaction.
	written  []string
	writeAll bool

	// The command in flight.
	answered  bool   // a chunk of its answer went to the client
	first     byte   // the first payload byte of its answer
	prepared  []byte // a PREPARE_OK header, for COM_STMT_PREPARE
	capturing bool
	capture   []byte
	hc        hintCount // hinted to the pool's cache: counted at its first answer
}

// mysqlAnswerCaps are the negotiated flags that change the bytes of an answer.
const mysqlAnswerCaps = mysqlwire.ForwardedCapabilities | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS

// newMySQLCache returns the caching state of a session of db and the session's state it
// follows, or nils when db is not cached. Over a stream whose pool end has other edges to tell
// about writes (sc.Writes), a database not cached here gets one too, disabled, to report the
// session's writes: the pool's cache and the other edges' hold reads of them.
func (s *Server) newMySQLCache(db Database, user string, caps, ext uint32, collation byte, sc link.Caps) (*mysqlCache, *sessionstate.MySQL) {
	if s.cfg.Cache == nil || db.Caching.Disabled {
		if sc.Writes == nil {
			return nil, nil
		}
		db.Caching = Caching{Disabled: true}
	}
	ns := db.origin()
	kb := append([]byte("\xffmysql\x00"), ns...)
	kb = append(append(append(kb, 0), db.Name...), 0)
	kb = append(append(kb, user...), 0)
	kb = binary.LittleEndian.AppendUint32(kb, caps&mysqlAnswerCaps)
	kb = append(kb, collation)
	kb = binary.LittleEndian.AppendUint32(kb, ext) // extended metadata changes column definitions
	return &mysqlCache{caching: db.Caching, label: db.Name, ns: ns, keyBase: kb,
		hits: s.m.cacheQ.WithLabelValues(db.Name, string(cache.Hit))}, sessionstate.NewMySQL()
}

// myPlan is what the edge decided about one command.
type myPlan struct {
	query    bool         // a COM_QUERY or COM_STMT_EXECUTE: counted in the cache metrics
	status   cache.Status // Miss for a candidate, else why not
	key      []byte
	maxAge   time.Duration
	cls      mysqlClass // of the SQL, for candidates and writes
	tables   []string   // a cacheable read's answer is kept under, once admitted (withRelated)
	sql      string
	classed  bool
	frames   []byte // what to send
	stmt     *sessionstate.MySQLStatement
	typesAt  int    // > 0: the execute relies on types the pool side has not seen; they go in here
	longData bool   // the execute relies on COM_STMT_SEND_LONG_DATA sent before it
	prepare  string // a COM_STMT_PREPARE's text
	vars     string // a COM_QUERY that sets session system variables the session can follow
	initDB   string // a COM_INIT_DB's database
	resetAll bool   // COM_RESET_CONNECTION
	// unknown: a COM_STMT_RESET or COM_STMT_FETCH of a statement the session lacks, whose
	// error (1243) is what SHOW WARNINGS lists next, not the last cached hit's (replayHit)
	unknown bool
}

// planMySQL reads one command: whether it is a candidate for the cache, with its key.
func (sess *mysqlSession) planMySQL(raw []byte) myPlan {
	mc := sess.mc
	p := myPlan{status: cache.NotAQuery, frames: raw}
	single := mysqlwire.LastSeq(raw) == 0 // one packet: the payload follows the header
	body := raw[mysqlwire.HeaderLen+1:]
	eligible := sess.eligible(&p)
	switch cmd := raw[mysqlwire.HeaderLen]; cmd {
	case mysql.COM_QUERY:
		p.query = true
		if !single {
			p.sql = string(mysqlwire.Payload(raw)[1:])
			return p
		}
		p.sql = string(body)
		if !eligible {
			return p
		}
		maxAge, off := commentControl(p.sql, mc.caching.MaxAge)
		if off {
			p.status = cache.Disabled
			return p
		}
		p.maxAge = maxAge
		p.key = sess.keyPrefix('Q', p.sql)
		mc.key = p.key
		p.status = cache.Miss
	case mysql.COM_STMT_PREPARE:
		p.prepare = string(mysqlwire.Payload(raw)[1:])
	case mysql.COM_STMT_EXECUTE:
		p.query = true
		sess.planExecute(&p, raw, single, eligible)
	case mysql.COM_STMT_CLOSE:
		if len(body) >= 4 {
			delete(sess.state.Statements, binary.LittleEndian.Uint32(body))
		}
	case mysql.COM_STMT_SEND_LONG_DATA:
		if len(body) >= 4 {
			if st := sess.state.Statements[binary.LittleEndian.Uint32(body)]; st != nil {
				st.LongData = true
			}
		}
	case mysql.COM_STMT_RESET, mysql.COM_STMT_FETCH:
		if len(body) >= 4 {
			st := sess.state.Statements[binary.LittleEndian.Uint32(body)]
			if st != nil && cmd == mysql.COM_STMT_RESET {
				st.LongData = false
			}
			p.unknown = st == nil
		}
	case mysql.COM_INIT_DB:
		p.initDB = string(body)
	case mysql.COM_RESET_CONNECTION:
		p.resetAll = true
	}
	return p
}

// eligible reports whether the session may use the cache now, setting p's status if not.
func (sess *mysqlSession) eligible(p *myPlan) bool {
	mc := sess.mc
	switch {
	case mc.caching.Disabled:
		p.status = cache.Disabled
	case sess.status&mysql.SERVER_STATUS_IN_TRANS != 0 || sess.status&mysql.SERVER_STATUS_AUTOCOMMIT == 0:
		p.status = cache.Transaction
	case sess.state.Dirty:
		p.status = cache.Uncacheable
	default:
		return true
	}
	return false
}

// keyPrefix starts the key of a command of kind 'Q' or 'E' for sql, in a buffer the next
// command reuses: the cache copies what it keeps.
func (sess *mysqlSession) keyPrefix(kind byte, sql string) []byte {
	mc, ms := sess.mc, sess.state
	if cap(mc.key) > 64<<10 {
		mc.key = nil
	}
	key := append(append(mc.key[:0], mc.keyBase...), kind)
	key = append(append(key, ms.DB...), 0)
	key = append(append(key, ms.Names...), 0)
	for _, v := range ms.Vars {
		key = append(append(append(key, 1), v...), 0)
	}
	return append(append(key, sql...), 0)
}

// mysqlCursorTypes are the flags of a COM_STMT_EXECUTE that open a cursor.
const mysqlCursorTypes = mysql.CURSOR_TYPE_READ_ONLY | mysql.CURSOR_TYPE_FOR_UPDATE | mysql.CURSOR_TYPE_SCROLLABLE

// planExecute reads a COM_STMT_EXECUTE:
//
//	id(4) flags(1) iterations(4) [null bitmap((n+7)/8) new-params-bound(1) [types(2n)] values]
//
// Its key holds the statement's text, the parameter types in force (sent now, or last time
// when the client does not send them again) and the null bitmap and values as sent. The pool
// side learns types from the executes it gets; when an execute that carried new types was
// answered from the cache, the next one that relies on them carries them again.
func (sess *mysqlSession) planExecute(p *myPlan, raw []byte, single, eligible bool) {
	mc := sess.mc
	body := raw[mysqlwire.HeaderLen+1:]
	if len(body) < 9 {
		return
	}
	st := sess.state.Statements[binary.LittleEndian.Uint32(body)]
	if st == nil {
		p.cls = mysqlClass{writeAll: true, reason: cache.Uncacheable} // a statement the edge lost track of
		p.classed = true
		return
	}
	p.sql, p.stmt = st.SQL, st
	flags := body[4]
	longData := st.LongData
	st.LongData = false
	if flags&mysqlCursorTypes != 0 { // not PARAMETER_COUNT_AVAILABLE (0x08), which opens none
		st.Cursor = true
	}
	p.longData = longData
	n := st.Params
	nb := (n + 7) / 8
	var types, values []byte
	if n > 0 {
		if !single || len(body) < 9+nb+1 {
			return
		}
		values = body[9+nb+1:]
		if body[9+nb] == 1 {
			if len(values) < 2*n {
				return
			}
			types, values = values[:2*n], values[2*n:]
			st.Types = append(st.Types[:0], types...)
		} else {
			types = st.Types
			if len(types) == 2*n && !bytes.Equal(st.Types, st.PoolTypes) {
				p.typesAt = mysqlwire.HeaderLen + 1 + 9 + nb
			}
		}
	}
	switch {
	case !eligible:
		return
	case !single || flags != 0 || st.Cursor || longData || len(types) != 2*n:
		p.status = cache.Uncacheable
		return
	}
	maxAge, off := commentControl(st.SQL, mc.caching.MaxAge)
	if off {
		p.status = cache.Disabled
		return
	}
	key := sess.keyPrefix('E', st.SQL)
	key = append(append(key, types...), body[9:9+nb]...)
	p.key, p.maxAge, p.status = append(key, values...), maxAge, cache.Miss
	mc.key = p.key
}

// withTypes returns the execute frames of st ready for the pool side: with st's parameter
// types put in at typesAt when the client relies on types the pool side has not seen (they
// came with an execute the cache answered).
func withTypes(frames []byte, st *sessionstate.MySQLStatement, typesAt int) []byte {
	if st == nil || st.Params == 0 || len(st.Types) != 2*st.Params {
		return frames
	}
	if typesAt > 0 && !bytes.Equal(st.Types, st.PoolTypes) {
		frames = appendExecuteWithTypes(nil, frames, typesAt, st.Types)
	}
	st.PoolTypes = append(st.PoolTypes[:0], st.Types...) // the pool side gets them now
	return frames
}

// appendExecuteWithTypes appends the one-packet execute raw with its new-params-bound flag
// (at offset at) set and types put in after it.
func appendExecuteWithTypes(dst, raw []byte, at int, types []byte) []byte {
	start := len(dst)
	dst = append(dst, raw[:at]...)
	dst = append(dst, 1)
	dst = append(dst, types...)
	dst = append(dst, raw[at+1:]...)
	n := len(dst) - start - mysqlwire.HeaderLen
	dst[start], dst[start+1], dst[start+2] = byte(n), byte(n>>8), byte(n>>16)
	return dst
}

// classOf returns the classification of p's SQL, once.
func (sess *mysqlSession) classOf(p *myPlan) mysqlClass {
	if !p.classed {
		p.cls, p.classed = sess.s.myClassified.get(p.sql), true
	}
	return p.cls
}

// beforeMySQLAnswer runs before a chunk of an answer goes to the client: writes not yet
// invalidated are (so that no client reads an older answer after this one), and the chunk is
// noted and kept as the command needs.
func (sess *mysqlSession) beforeMySQLAnswer(chunk []byte) {
	mc := sess.mc
	sess.mysqlInvalidate()
	if mc.hc.pending {
		sess.noteCacheStatus(mc.hc.count(sess.s.m, mc.label, sess.stream.Caps().PoolCache))
	}
	if !mc.answered && len(chunk) > mysqlwire.HeaderLen {
		mc.answered, mc.first = true, chunk[mysqlwire.HeaderLen]
		if n := int(chunk[0]) | int(chunk[1])<<8 | int(chunk[2])<<16; mc.first == 0 && n >= 9 && len(chunk) >= mysqlwire.HeaderLen+9 {
			mc.prepared = append(mc.prepared[:0], chunk[mysqlwire.HeaderLen:mysqlwire.HeaderLen+9]...)
		}
	}
	if !mc.capturing {
		return
	}
	if len(mc.capture)+len(chunk) > mc.caching.MaxResultBytes {
		mc.capturing = false
		sess.s.m.cacheStatus(mc.label, cache.OversizedResult)
		sess.noteCacheStatus(cache.OversizedResult)
		return
	}
	mc.capture = append(mc.capture, chunk...)
}

// mysqlInvalidate invalidates the writes the session made in its transaction so far.
func (sess *mysqlSession) mysqlInvalidate() {
	if mc, c := sess.mc, sess.s.cfg.Cache; c != nil && (len(mc.written) > 0 || mc.writeAll) {
		c.Invalidate(mc.ns, mc.written, mc.writeAll)
	}
}

// afterMySQL notes what an answered command changed in the session (sessionstate.MySQL).
func (sess *mysqlSession) afterMySQL(p *myPlan) {
	mc, ms := sess.mc, sess.state
	ok := mc.answered && mc.first == 0 // an OK packet (or PREPARE_OK)
	switch {
	case p.prepare != "" && ok && len(mc.prepared) == 9:
		b := mc.prepared[1:]
		ms.Prepared(binary.LittleEndian.Uint32(b), p.prepare, int(binary.LittleEndian.Uint16(b[6:])))
	case p.initDB != "" && ok:
		ms.InitDB(p.initDB)
	case p.resetAll && ok:
		ms.ResetConnection()
	case p.classed && ok:
		ms.Ran(p.cls.eff, p.vars)
	}
	if sess.status&mysql.SERVER_STATUS_IN_TRANS == 0 && !sess.infile {
		mc.written, mc.writeAll = mc.written[:0], false
	}
}

// cacheableAnswer reports whether a complete answer may be kept: a result set the session was
// answered whole, outside a transaction, and that may be replayed (mysqlwire.ReplayableResult).
func (sess *mysqlSession) cacheableAnswer(resp []byte) bool {
	if !sess.mc.answered || sess.mc.first == 0 || sess.mc.first == 0xff || sess.status&mysql.SERVER_STATUS_IN_TRANS != 0 {
		return false
	}
	return mysqlwire.ReplayableResult(resp)
}
