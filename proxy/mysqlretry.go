package proxy

import (
	"context"
	"errors"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// mysqlRetryable reports whether the command p plans may be sent again over another pool
// should the tunnel fail under it before any of its answer reached the client, as for
// PostgreSQL (session.retryable): one COM_QUERY of one read-only statement calling nothing
// volatile (or of no statement at all: empty, or comments only), or one COM_STMT_EXECUTE of
// such a statement (no cursor, no long data), outside a transaction, on a session whose state a new pool side can be given (restoreMySQL): its USE,
// SET NAMES, session variables and prepared statements, no other session change, nothing
// pinned, no LOAD DATA in progress, no cache hit waiting to be replayed.
func (sess *mysqlSession) mysqlRetryable(p *myPlan) bool {
	mc, raw := sess.mc, p.frames
	if !sess.stateRestorable() || len(mc.replay) > 0 || len(raw) <= mysqlwire.HeaderLen || mysqlwire.LastSeq(raw) != 0 {
		return false
	}
	switch raw[mysqlwire.HeaderLen] {
	case mysql.COM_QUERY:
	case mysql.COM_STMT_EXECUTE: // one that opens a cursor marked its statement's, above
		if p.stmt == nil || p.longData {
			return false
		}
	default:
		return false
	}
	cls := sess.classOf(p)
	st := cls.st
	if st.Statements == 0 && !st.ParseError && raw[mysqlwire.HeaderLen] == mysql.COM_QUERY &&
		!strings.Contains(p.sql, "/*!") && !strings.Contains(p.sql, "/*M!") {
		return true // empty, or plain comments only: it runs nothing (MariaDB answers OK or 1065)
	}
	if st.Kind != classify.KindRead || st.ParseError || st.Statements != 1 || len(cls.writes) > 0 || cls.writeAll ||
		cls.eff.Other || len(cls.eff.Names) > 0 {
		return false
	}
	for _, f := range st.Functions {
		if v, known := classify.MySQLVolatility(f); !known || v == classify.Volatile {
			return false
		}
	}
	return true
}

// stateRestorable reports whether all of the session's state is what restoreMySQL gives a new
// pool side: it is outside a transaction and LOAD DATA, its state is followed (not dirty, a
// SET NAMES said again plainly, prepared statements without a cursor or long data, that
// register), and nothing of it is pinned to its origin connection. A read is sent again on
// such a session (mysqlRetryable), and such a session is handed over at an upgrade
// (handover_mysql.go).
func (sess *mysqlSession) stateRestorable() bool {
	ms := sess.state
	if sess.mc == nil || ms == nil || sess.infile || sess.status&mysql.SERVER_STATUS_IN_TRANS != 0 || ms.Dirty ||
		!restorable(ms.Names) || sess.stream.Pinned() {
		return false
	}
	for _, st := range ms.Statements {
		if st.Cursor || st.LongData || len(st.SQL) > mysqlwire.MaxRegisteredSQL || len(st.DB) > 0xffff {
			return false
		}
	}
	return true
}

// mysqlMaxResends bounds the times one command is sent again: KILL of every connection of a
// database reaches them one by one, so the connection a read was sent again on may be killed
// a moment later too.
const mysqlMaxResends = 3

// mysqlRetryElsewhere opens the session again, on whichever pool the transport picks now,
// after the tunnel to the pool failed with err (tunnel.ErrPoolLost) under a retryable command,
// or the origin closed the connection the command went out on (tunnel.ErrOriginEnded: KILL,
// a restart, wait_timeout, between the pool's check of an idle connection and the command's
// write), and sends frames there; it reports whether it did. Nothing of the command's answer
// may have reached the client. A read sent again is harmless whether or not the origin ran it
// (DESIGN.md invariant 2 is about writes, which are never retryable).
func (sess *mysqlSession) mysqlRetryElsewhere(ctx context.Context, err error, frames []byte) bool {
	if !errors.Is(err, tunnel.ErrPoolLost) && !errors.Is(err, link.ErrOriginEnded) || ctx.Err() != nil {
		return false
	}
	sess.log.Info("the tunnel or the origin connection failed under a read; sending it again", "err", err)
	label := sess.db.Name
	stream, oerr := sess.s.cfg.Transport.Open(ctx, sess.db.origin(), sess.params)
	if oerr != nil {
		sess.s.m.retries.WithLabelValues(label, "failed").Inc()
		sess.log.Warn("no pool to send the read to again", "err", oerr)
		return false
	}
	sess.mu.Lock()
	old := sess.stream
	sess.stream = stream
	sess.mu.Unlock()
	old.Close()
	sess.fatal.mu.Lock()
	ended := sess.fatal.e != nil || sess.fatal.killed
	sess.fatal.mu.Unlock()
	if ended {
		return false // run closes the new stream on its way out
	}
	if !restoreMySQL(ctx, stream, sess.state) {
		stream.Close()
		sess.s.m.retries.WithLabelValues(label, "failed").Inc()
		sess.log.Warn("the next pool refused the session's database or character set; the read is not sent again")
		return false
	}
	if err := stream.Send(ctx, frames); err != nil {
		return false
	}
	sess.s.m.retries.WithLabelValues(label, "resent").Inc()
	return true
}

// restorable reports whether the SET NAMES or SET CHARACTER SET in force, as
// classify.MySQLSession spells it ("setnames utf8mb4 utf8mb4_bin"), can be said again plainly.
func restorable(names string) bool {
	if names == "" {
		return true
	}
	f := strings.Fields(names)
	return len(f) >= 2 && (f[0] == "setnames" && len(f) <= 3 || f[0] == "setcharset" && len(f) == 2) &&
		!strings.ContainsAny(names, `'\`)
}

// restoreMySQL tells a new pool side the session's database and character set, chosen with
// USE and SET NAMES on the one it replaces, its session variables (the statements that set
// them, in order), and its prepared statements (mysqlwire.ComRegisterStmt, under the ids the
// client knows them by); it reports whether the origin said OK to all but the last.
func restoreMySQL(ctx context.Context, stream link.Stream, ms *sessionstate.MySQL) bool {
	var cmds [][]byte
	if ms.DB != "" {
		cmds = append(cmds, mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_INIT_DB}, ms.DB...)))
	}
	if f := strings.Fields(ms.Names); len(f) >= 2 {
		q := "SET CHARACTER SET '" + f[1] + "'"
		if f[0] == "setnames" {
			q = "SET NAMES '" + f[1] + "'"
			if len(f) == 3 {
				q += " COLLATE '" + f[2] + "'"
			}
		}
		cmds = append(cmds, mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, q...)))
	}
	for _, v := range ms.Vars {
		cmds = append(cmds, mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, v...)))
	}
	for _, cmd := range cmds {
		resp, err := exchangeWhole(ctx, stream, cmd)
		if err != nil || len(resp) <= mysqlwire.HeaderLen || resp[mysqlwire.HeaderLen] != 0x00 {
			return false
		}
	}
	if len(ms.Statements) > 0 {
		var reg []byte
		for id, st := range ms.Statements {
			reg = mysqlwire.AppendStmtRegistration(reg, id, st.Params, st.PoolTypes, st.DB, st.SQL)
		}
		stream.Skip(reg)
	}
	return true
}
