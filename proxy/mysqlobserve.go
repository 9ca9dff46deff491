package proxy

import (
	"encoding/binary"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// observedCommand follows a MySQL session's command in flight for the query insights, as
// observedConn does a PostgreSQL unit: the command (COM_QUERY, COM_STMT_EXECUTE,
// COM_STMT_PREPARE) is noted when it is read (begin), its answer's packets as they go to the
// client (answer, from noteAnswer), how the cache treated it (status), and it is reported to the
// insight Recorder once answered (finish). Only the session's goroutine touches it.
type observedCommand struct {
	on       bool // a command the insights count is in flight
	start    time.Time
	query    string
	received int64
	sent     int64
	parses   int
	binds    int
	status   cache.Status
	scan     myAnswerScan
	txStart  time.Time // when the open transaction began
	inTx     bool      // the session was in a transaction when the command was sent
}

// begin notes the command raw, read at now; commands that are not queries are not followed.
func (u *observedCommand) begin(sess *mysqlSession, raw []byte, now time.Time) {
	if sess.infile {
		return // LOAD DATA LOCAL's file: part of the command that asked for it
	}
	u.on = false
	if sess.s.cfg.Insight == nil || len(raw) <= mysqlwire.HeaderLen {
		return
	}
	*u = observedCommand{txStart: u.txStart, start: now, received: int64(len(raw)), inTx: sess.status&mysql.SERVER_STATUS_IN_TRANS != 0,
		scan: myAnswerScan{deprecateEOF: sess.caps&mysql.CLIENT_DEPRECATE_EOF != 0}}
	switch raw[mysqlwire.HeaderLen] {
	case mysql.COM_QUERY:
		p := raw[mysqlwire.HeaderLen+1:]
		if mysqlwire.LastSeq(raw) != 0 {
			p = mysqlwire.Payload(raw)[1:]
		}
		u.query = string(p[:min(len(p), keepBytes)])
	case mysql.COM_STMT_EXECUTE:
		u.binds = 1
		if b := raw[mysqlwire.HeaderLen+1:]; sess.mc != nil && len(b) >= 4 {
			if st := sess.state.Statements[binary.LittleEndian.Uint32(b)]; st != nil {
				u.query = st.SQL
			}
		}
	case mysql.COM_STMT_PREPARE:
		u.parses = 1
	default:
		return
	}
	u.on = true
}

// answer follows a chunk of the answer written to the client.
func (u *observedCommand) answer(chunk []byte) {
	if u.on {
		u.sent += int64(len(chunk))
		u.scan.feed(chunk)
	}
}

// finish reports the command once it is answered: not while the client still sends a LOAD DATA
// LOCAL file, nor a command that got no answer.
func (u *observedCommand) finish(sess *mysqlSession, now time.Time) {
	if !u.on || sess.infile || u.sent == 0 {
		return
	}
	u.on = false
	query := u.query
	if u.parses > 0 {
		query = "" // a prepare: counted in the totals, not as a call of its shape
	}
	iu := insight.Unit{DB: sess.db.Name, Protocol: insight.MySQL, Query: query, Start: u.start, Duration: now.Sub(u.start),
		Rows: u.scan.rows, Statements: u.scan.statements, Status: u.status, Failed: u.scan.failed, Received: u.received,
		Sent: u.sent, Parses: u.parses, Binds: u.binds}
	inTx := sess.status&mysql.SERVER_STATUS_IN_TRANS != 0
	switch {
	case !u.inTx && !inTx && u.scan.statements > 0 && u.parses == 0:
		iu.Xacts, iu.XactTime = 1, iu.Duration
	case !u.inTx && inTx:
		u.txStart = u.start
	case u.inTx && !inTx:
		iu.Xacts, iu.XactTime = 1, now.Sub(u.txStart)
	}
	sess.s.cfg.Insight.Observe(iu)
}

// noteCacheStatus records how the cache treated the command in flight.
func (sess *mysqlSession) noteCacheStatus(st cache.Status) {
	if st != "" {
		sess.observed.status = st
	}
}

// myAnswerScan counts the statements, rows and errors of a MySQL answer from its packets,
// which may be split across chunks: an OK packet or a result set's end is a statement (more
// follow while SERVER_MORE_RESULTS_EXISTS is set), a row packet is a row, an OK packet's
// affected rows are rows too, and an ERR packet is a failure.
type myAnswerScan struct {
	deprecateEOF bool
	state        myScanState
	columns      uint64 // column definitions left to skip

	hdr    [mysqlwire.HeaderLen]byte
	nhdr   int
	remain int // payload bytes of the current packet not seen yet
	length int // the current packet's payload length
	head   []byte
	cont   bool // the current packet continues the one before

	statements int
	rows       int64
	failed     bool
}

type myScanState uint8

const (
	scanFirst   myScanState = iota // a statement's first packet: OK, ERR, LOCAL INFILE or a column count
	scanColumns                    // column definitions
	scanEOF                        // the EOF after them (without CLIENT_DEPRECATE_EOF)
	scanRows                       // rows until the end packet
	scanDone                       // the answer is over
)

// myScanHead is how much of each packet's payload the scanner looks at: enough for an OK
// packet's two length-encoded integers and its status flags.
const myScanHead = 24

func (s *myAnswerScan) feed(p []byte) {
	for len(p) > 0 {
		if s.nhdr < mysqlwire.HeaderLen {
			n := copy(s.hdr[s.nhdr:], p)
			s.nhdr += n
			p = p[n:]
			if s.nhdr < mysqlwire.HeaderLen {
				return
			}
			s.length = int(s.hdr[0]) | int(s.hdr[1])<<8 | int(s.hdr[2])<<16
			s.remain = s.length
			s.head = s.head[:0]
		}
		n := min(s.remain, len(p))
		if len(s.head) < myScanHead {
			s.head = append(s.head, p[:min(n, myScanHead-len(s.head))]...)
		}
		s.remain -= n
		p = p[n:]
		if s.remain == 0 {
			if !s.cont {
				s.packet(s.head, s.length)
			}
			// A payload of 2^24-1 bytes goes on in the next packet.
			s.cont = s.length == mysqlwire.MaxPayload
			s.nhdr = 0
		}
	}
}

// packet takes one whole packet, of payload length n, whose payload starts with head.
func (s *myAnswerScan) packet(head []byte, n int) {
	if len(head) == 0 {
		return
	}
	end := head[0] == 0xfe && n < 0xffffff && (n < 9 || s.deprecateEOF)
	switch s.state {
	case scanFirst:
		switch head[0] {
		case 0x00:
			s.rows += int64(lenenc(head[1:]))
			s.endStatement(okFlags(head))
		case 0xff:
			s.failed, s.state = true, scanDone
		case 0xfb:
			// LOAD DATA LOCAL: the client sends a file, then the statement's OK follows.
		default:
			s.columns, s.state = lenenc(head), scanColumns
			if s.columns == 0 {
				s.state = scanRows
			}
		}
	case scanColumns:
		if s.columns--; s.columns == 0 {
			s.state = scanRows
			if !s.deprecateEOF {
				s.state = scanEOF
			}
		}
	case scanEOF:
		s.state = scanRows
	case scanRows:
		switch {
		case head[0] == 0xff:
			s.failed, s.state = true, scanDone
		case end && !s.deprecateEOF:
			s.endStatement(eofStatus(head))
		case end:
			s.endStatement(okFlags(head))
		default:
			s.rows++
		}
	}
}

func (s *myAnswerScan) endStatement(status uint16) {
	s.statements++
	s.state = scanDone
	if status&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
		s.state = scanFirst
	}
}

// lenenc decodes a length-encoded integer at the start of p; 0 when p is too short.
func lenenc(p []byte) uint64 {
	k := mysqlwire.LenencLen(p)
	if k == 0 || k > len(p) {
		return 0
	}
	if k == 1 {
		return uint64(p[0])
	}
	var v uint64
	for i := k - 1; i >= 1; i-- {
		v = v<<8 | uint64(p[i])
	}
	return v
}

// okPacketStatus returns the status flags of an OK packet (header 0x00 or 0xfe) of which head
// is the start: after the header, affected rows and last insert id; false when head is too
// short.
func okPacketStatus(head []byte) (uint16, bool) {
	p := head[1:]
	for range 2 {
		k := mysqlwire.LenencLen(p)
		if k == 0 || k > len(p) {
			return 0, false
		}
		p = p[k:]
	}
	if len(p) < 2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p), true
}

// okFlags is okPacketStatus, 0 when head is too short.
func okFlags(head []byte) uint16 {
	st, _ := okPacketStatus(head)
	return st
}

// eofStatus returns the status flags of an EOF packet: header, warnings, status.
func eofStatus(head []byte) uint16 {
	if len(head) < 5 {
		return 0
	}
	return binary.LittleEndian.Uint16(head[3:])
}
