package proxy

import (
	"context"
	"encoding/binary"
	"strings"
	"unicode"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// BEGIN held back. A client opens a transaction with a lone simple-query BEGIN and waits for
// its answer before sending the first statement: one WAN round trip that carries nothing. The
// edge answers that BEGIN itself (CommandComplete, ReadyForQuery 'T') and sends it ahead of the
// transaction's next unit, in the same batch, so that a transaction of N statements costs N
// round trips plus COMMIT. The BEGIN's own answers are taken off what comes back.
//
// Only BEGIN forms the origin accepts at transaction status 'I' are held back (see
// isPlainBegin), so the BEGIN can fail only with its connection, which fails the unit behind
// it too. Should it fail all the same, the client gets BEGIN's error in place of the unit's
// answers, with the final ReadyForQuery; a unit that could not carry such an answer (COPY,
// Flush, FunctionCall, an unfinished extended-protocol unit) is not merged: the BEGIN goes
// alone first, and its failure ends the session.
type beginHold struct {
	tx      byte   // transaction status as of the last ReadyForQuery the client got; 0: unknown
	held    []byte // the client's BEGIN Query, answered but not sent yet
	merged  []byte // held followed by the batch it goes with
	strip   bool   // the BEGIN's answers are still to come: drop them
	failure []byte // the BEGIN's ErrorResponse, when it failed: the unit's answers are dropped
	status  byte   // the last ReadyForQuery status seen while dropping
}

// holdBegin answers a lone BEGIN itself and keeps it for the next unit. It reports whether it
// did; ok is false when the client is gone.
func (sess *session) holdBegin(frames []byte) (held, ok bool) {
	b := &sess.begin
	if b.tx != 'I' || b.held != nil || sess.stream.Pinned() {
		return false, true
	}
	f, rest, isFrame := pgwire.NextFrame(frames)
	if !isFrame || len(rest) != 0 || f.Type != 'Q' {
		return false, true
	}
	q, _, _ := cutCString(f.Body)
	if !isPlainBegin(q) {
		return false, true
	}
	b.held = append(b.held[:0], frames...)
	b.tx = 'T'
	answer := appendBeginAnswer(nil)
	if sess.cache != nil {
		sess.beforeAnswer(answer) // the session is in a transaction now: nothing from the cache
	}
	_, err := sess.nc.Write(answer)
	return true, err == nil
}

// appendBeginAnswer appends what PostgreSQL answers to BEGIN at status 'I'.
func appendBeginAnswer(dst []byte) []byte {
	dst = pgwire.AppendFrame(dst, 'C', []byte("BEGIN\x00"))
	return pgwire.AppendReadyForQuery(dst, 'T')
}

// mergeable reports whether a batch is whole units whose answers a failed BEGIN's error can
// stand in for: simple Queries, and extended-protocol messages ending with Sync.
func mergeable(frames []byte) bool {
	last := byte(0)
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			return false
		}
		rest = next
		switch f.Type {
		case 'Q', 'P', 'B', 'D', 'E', 'S', 'C':
		default:
			return false
		}
		last = f.Type
	}
	return last == 'Q' || last == 'S'
}

// withBegin returns what to send for frames: the held BEGIN in front when there is one, and
// arms the stripping of its answers.
func (sess *session) withBegin(frames []byte) []byte {
	b := &sess.begin
	if b.held == nil {
		return frames
	}
	b.merged = append(append(b.merged[:0], b.held...), frames...)
	b.held = nil
	b.strip = true
	return b.merged
}

// filter takes the held BEGIN's answers off a chunk of answers (in place), and, if the
// BEGIN failed, everything after them, remembering the last ReadyForQuery.
func (b *beginHold) filter(chunk []byte) []byte {
	if !b.strip && b.failure == nil {
		return chunk
	}
	out := chunk[:0]
	for rest := chunk; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		switch {
		case b.strip:
			switch f.Type {
			case 'E':
				b.failure = append([]byte(nil), f.Raw...)
			case 'Z':
				b.strip = false
				if len(f.Body) > 0 {
					b.status = f.Body[0]
				}
			}
		case b.failure != nil:
			if f.Type == 'Z' && len(f.Body) > 0 {
				b.status = f.Body[0]
			}
		default:
			out = append(out, f.Raw...) // copy: out never overtakes rest
		}
	}
	return out
}

// failed returns, once a unit's answers are all in, what the client gets instead of them
// when the BEGIN sent ahead failed: its error and the final ReadyForQuery. Nil otherwise.
func (b *beginHold) failed() []byte {
	if b.failure == nil {
		return nil
	}
	status := b.status
	if status == 0 {
		status = 'I'
	}
	out := pgwire.AppendReadyForQuery(b.failure, status)
	b.failure = nil
	return out
}

// noteStatus keeps the transaction status the client last got, from the last chunk of a unit's
// answers, which ends with ReadyForQuery when the unit is complete. Unknown (0) otherwise: no
// BEGIN is held back until a unit ends with one again.
func (b *beginHold) noteStatus(last []byte) {
	n := len(last)
	if n >= 6 && last[n-6] == 'Z' && binary.BigEndian.Uint32(last[n-5:]) == 5 {
		b.tx = last[n-1]
		return
	}
	b.tx = 0
}

// isPlainBegin reports whether q is one BEGIN or START TRANSACTION statement whose every word
// PostgreSQL accepts at transaction status 'I': transaction modes spelled out, no comments, no
// second statement.
func isPlainBegin(q string) bool {
	if t := strings.TrimLeftFunc(q, unicode.IsSpace); !startsWithFold(t, "begin") && !startsWithFold(t, "start") {
		return false // most queries: no allocation
	}
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	words := strings.Fields(strings.ToLower(strings.ReplaceAll(q, ",", " , ")))
	if len(words) == 0 {
		return false
	}
	switch words[0] {
	case "begin":
		words = words[1:]
		if len(words) > 0 && (words[0] == "work" || words[0] == "transaction") {
			words = words[1:]
		}
	case "start":
		if len(words) < 2 || words[1] != "transaction" {
			return false
		}
		words = words[2:]
	default:
		return false
	}
	// Transaction modes, separated by commas or spaces.
	for len(words) > 0 {
		switch {
		case words[0] == ",":
			words = words[1:]
		case hasWords(words, "isolation", "level", "serializable"):
			words = words[3:]
		case hasWords(words, "isolation", "level", "repeatable", "read"),
			hasWords(words, "isolation", "level", "read", "committed"),
			hasWords(words, "isolation", "level", "read", "uncommitted"):
			words = words[4:]
		case hasWords(words, "read", "write"), hasWords(words, "read", "only"), hasWords(words, "not", "deferrable"):
			words = words[2:]
		case words[0] == "deferrable":
			words = words[1:]
		default:
			return false
		}
	}
	return true
}

func hasWords(words []string, want ...string) bool {
	if len(words) < len(want) {
		return false
	}
	for i, w := range want {
		if words[i] != w {
			return false
		}
	}
	return true
}

// sendBeginAlone sends the held BEGIN on its own, ahead of a batch it can't go with, and takes
// its answers. It reports false when the session is over; a failed BEGIN ends it, since the
// client was told it succeeded.
func (sess *session) sendBeginAlone(ctx context.Context) bool {
	b := &sess.begin
	held := b.held
	b.held = nil
	if err := sess.stream.Send(ctx, held); err != nil {
		sess.sendFailed(err)
		return false
	}
	b.strip = true
	var buf []byte
	for sess.stream.Pending() {
		var err error
		buf, err = sess.stream.Recv(ctx, buf[:0])
		buf = b.filter(buf)
		if err != nil {
			sess.failed(err)
			return false
		}
	}
	if b.failed() != nil {
		sess.log.Warn("a held-back BEGIN failed at the origin")
		sess.end(pgwire.Fatal(pgwire.ConnectionFailure, "the transaction could not begin at the origin database"))
		return false
	}
	return true
}

// startsWithFold reports whether s starts with prefix, ignoring ASCII case.
func startsWithFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
