package proxy

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// replayHit runs the last command, which the cache answered, on the origin again (its answer
// discarded) when the command p reads what the previous statement left there: FOUND_ROWS(),
// ROW_COUNT(), warnings and errors. It forgets the last hit once a statement runs. It reports
// false when the session is over.
func (sess *mysqlSession) replayHit(ctx context.Context, p *myPlan) bool {
	mc := sess.mc
	text, runs := p.sql, p.query
	if p.prepare != "" {
		text = p.prepare
	}
	if p.unknown {
		return sess.forgetHit(true) // its error is the origin's diagnostics now
	}
	if text == "" && !runs {
		return true // COM_STMT_CLOSE, COM_STMT_RESET, ...: the origin's diagnostics stay
	}
	if readsDiagnostics(text) {
		frames := mc.replay
		st := mc.replayStmt
		switch {
		case st == nil:
		case sess.state.Statements[binary.LittleEndian.Uint32(frames[mysqlwire.HeaderLen+1:])] == st:
			frames = withTypes(frames, st, mc.replayTypesAt)
		default:
			// Closed since (go-sql-driver closes each statement after its query): prepare it
			// again for the replay.
			return sess.replayClosed(ctx, st) && sess.forgetHit(runs)
		}
		if _, err := sess.roundTrip(ctx, frames); err != nil {
			return false
		}
	}
	return sess.forgetHit(runs)
}

// forgetHit forgets the last hit once a statement runs; it reports true.
func (sess *mysqlSession) forgetHit(runs bool) bool {
	if runs {
		sess.mc.replay, sess.mc.replayStmt = sess.mc.replay[:0], nil
	}
	return true
}

// replayClosed replays the last hit, an execute of st, which the client has closed since:
// prepare st's text, execute it with the hit's parameters (types included) and close it.
func (sess *mysqlSession) replayClosed(ctx context.Context, st *sessionstate.MySQLStatement) bool {
	mc := sess.mc
	if len(st.SQL)+1 >= mysqlwire.MaxPayload || len(st.Types) != 2*st.Params {
		return true
	}
	resp, err := sess.roundTrip(ctx, mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_STMT_PREPARE}, st.SQL...)))
	if err != nil {
		return false
	}
	if len(resp) < mysqlwire.HeaderLen+5 || resp[mysqlwire.HeaderLen] != 0 {
		return true
	}
	id := resp[mysqlwire.HeaderLen+1 : mysqlwire.HeaderLen+5]
	exec := append([]byte(nil), mc.replay...)
	copy(exec[mysqlwire.HeaderLen+1:], id)
	if mc.replayTypesAt > 0 {
		exec = appendExecuteWithTypes(nil, exec, mc.replayTypesAt, st.Types)
	}
	if _, err := sess.roundTrip(ctx, exec); err != nil {
		return false
	}
	_, err = sess.roundTrip(ctx, mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_STMT_CLOSE}, id...)))
	return err == nil
}

// roundTrip sends frames of the edge's own and returns the whole answer, which the client
// never sees. A failure ends the session.
func (sess *mysqlSession) roundTrip(ctx context.Context, frames []byte) ([]byte, error) {
	sess.cr.watch()
	if err := sess.stream.Send(ctx, frames); err != nil {
		if errors.Is(err, link.ErrQueueTimeout) {
			return nil, nil // nothing ran; the client's own command will get the error
		}
		sess.sendFailed(err)
		return nil, err
	}
	var resp []byte
	for sess.stream.Pending() {
		var err error
		if resp, err = sess.stream.Recv(ctx, resp); err != nil {
			sess.failed(err)
			return nil, err
		}
	}
	return resp, nil
}

// readsDiagnostics reports whether a statement may read what the previous one left on the
// origin connection (found rows, affected rows, warnings, errors).
func readsDiagnostics(q string) bool {
	for _, w := range [...]string{"found_rows", "row_count", "warning", "error", "diagnostics"} {
		if containsFold(q, w) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII word w, in any case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
