package kv

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// pageRows is how many keys a SELECT reads from storage at a time.
const pageRows = 1000

// portal is a statement bound to parameter values. A SELECT's progress lives here between
// Executes that ask for a few rows at a time.
type portal struct {
	s       *session
	ps      *prepared
	args    values
	formats []int16 // result formats as Bind gave them

	q    *query  // the resolved SELECT, once it ran
	page []entry // read from storage, not yet sent
	sent int64   // rows sent
	done bool    // storage has no more rows for it
}

// query is a SELECT with its operands resolved.
type query struct {
	none      bool   // a NULL operand: no key matches
	exact     bool   // one key: key = x, or a LIKE pattern without %
	key       string // the exact key
	prefix    string // keys starting with prefix ("" for all)
	after     string // keys greater than after
	hasAfter  bool
	limit     int64 // -1 for none
	withValue bool  // the value column is selected
}

// matches reports whether key meets the query's prefix and cursor conditions.
func (q *query) matches(key string) bool {
	return strings.HasPrefix(key, q.prefix) && (!q.hasAfter || key > q.after)
}

// run executes a portal: up to maxRows rows of a SELECT (0: all), or the whole of any other
// statement. With describe it sends the RowDescription first, as a simple Query does.
func (s *session) run(p *portal, maxRows int64, describe bool) error {
	st := p.ps.st
	now := time.Now().Unix()
	switch st.verb {
	case vGet:
		return s.selectRows(p, maxRows, describe, now)
	case vPut:
		return s.put(p, now)
	case vDelete:
		n, err := s.ns.deleteMatching(s.ctx, st, p.args, now)
		if err != nil {
			return err
		}
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "DELETE", n, true)
		return nil
	}
	return s.sessionStatement(st, describe)
}

// deleteMatching runs a DELETE's statement with its operands bound, returning the rows it
// deleted (0 or 1).
func (ns *Namespace) deleteMatching(ctx context.Context, st *statement, vs values, now int64) (int64, error) {
	key, null, err := vs.text(st.key, "key")
	if err != nil || null {
		return 0, err
	}
	found, err := ns.delete(ctx, key, now)
	if err != nil || !found {
		return 0, err
	}
	return 1, nil
}

// resolve binds the SELECT's operands.
func (p *portal) resolve() (*query, error) {
	st, vs := p.ps.st, p.args
	q := &query{limit: -1}
	for _, c := range st.cols {
		q.withValue = q.withValue || c == colValue
	}
	if st.key.kind != opNone {
		k, null, err := vs.text(st.key, "key")
		if err != nil {
			return nil, err
		}
		q.none = q.none || null
		q.exact, q.key = true, k
	}
	if st.like.kind != opNone {
		pat, null, err := vs.text(st.like, "a LIKE pattern")
		if err != nil {
			return nil, err
		}
		if null {
			q.none = true
		} else {
			prefix, exact, err := likePrefix(pat)
			if err != nil {
				return nil, err
			}
			if exact {
				q.none = q.none || q.exact && q.key != prefix
				q.exact, q.key = true, prefix
			} else {
				q.prefix = prefix
			}
		}
	}
	if st.after.kind != opNone {
		a, null, err := vs.text(st.after, "key")
		if err != nil {
			return nil, err
		}
		q.none = q.none || null
		q.after, q.hasAfter = a, true
	}
	if st.limit.kind != opNone {
		n, null, err := vs.integer(st.limit)
		if err != nil {
			return nil, err
		}
		if !null {
			if n < 0 {
				return nil, pgserver.Errorf(codeInvalidLimit, "LIMIT must not be negative")
			}
			q.limit = n
		}
	}
	return q, nil
}

// selectRows sends a SELECT's rows, reading them from storage a page at a time so that a large
// listing streams: a page is read only when the last one is sent, and the client's reading pace
// (flushAt, then TCP or pipe backpressure) sets the pace of the reads.
func (s *session) selectRows(p *portal, maxRows int64, describe bool, now int64) error {
	if p.q == nil {
		q, err := p.resolve()
		if err != nil {
			return err
		}
		p.q = q
		p.done = q.none || q.limit == 0
	}
	cols := p.ps.st.cols
	if describe {
		fields, _ := p.Fields()
		s.w.AppendRowDescription(fields)
	}
	var sentNow int64
	for {
		if len(p.page) == 0 {
			if p.done {
				break
			}
			if err := s.ns.readPage(s.ctx, p, now); err != nil {
				return err
			}
			continue
		}
		if maxRows > 0 && sentNow == maxRows {
			s.w.Out = pgserver.AppendEmpty(s.w.Out, 's') // PortalSuspended
			return nil
		}
		s.sendRow(&p.page[0], cols, p.formats)
		p.page[0] = entry{}
		p.page = p.page[1:]
		p.sent++
		sentNow++
		if err := s.w.MaybeFlush(); err != nil {
			return err
		}
	}
	s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "SELECT", p.sent, true)
	return nil
}

// readPage reads the next page of p's rows from storage.
func (ns *Namespace) readPage(ctx context.Context, p *portal, now int64) error {
	q := p.q
	if q.exact {
		p.done = true
		e, ok, err := ns.get(ctx, q.key, q.withValue, now)
		if err != nil {
			return err
		}
		if ok && q.matches(e.key) {
			p.page = append(p.page[:0], e)
		}
		return nil
	}
	want := int64(pageRows)
	if q.limit >= 0 {
		want = min(want, q.limit-p.sent)
	}
	page, more, err := ns.list(ctx, listing{
		prefix:    q.prefix,
		after:     q.after,
		hasAfter:  q.hasAfter,
		limit:     int(want),
		withValue: q.withValue,
	}, now)
	if err != nil {
		return err
	}
	p.page = page
	if len(page) > 0 {
		q.after, q.hasAfter = page[len(page)-1].key, true
	}
	if !more || q.limit >= 0 && p.sent+int64(len(page)) >= q.limit {
		p.done = true
	}
	return nil
}

// sendRow appends one row as a DataRow: the columns of e in their result formats.
func (s *session) sendRow(e *entry, cols []column, formats []int16) {
	out, at := pgserver.BeginMsg(s.w.Out, 'D')
	out = binary.BigEndian.AppendUint16(out, uint16(len(cols)))
	for i, c := range cols {
		lenAt := len(out)
		out = append(out, 0, 0, 0, 0)
		var ok bool
		out, ok = appendColumn(out, e, c, pgserver.FormatAt(formats, i) == 1)
		n := uint32(len(out) - lenAt - 4)
		if !ok {
			n = 0xffffffff // NULL
		}
		binary.BigEndian.PutUint32(out[lenAt:], n)
	}
	s.w.Out = pgserver.FinishMsg(out, at)
}

// put runs an INSERT: every row is a put that overwrites, all in one transaction.
func (s *session) put(p *portal, now int64) error {
	es, err := entries(p.ps.st, p.args, now)
	if err != nil {
		return err
	}
	if err := s.ns.putAll(s.ctx, es); err != nil {
		return err
	}
	s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "INSERT 0", int64(len(es)), true)
	return nil
}

// entries builds the records an INSERT puts, from its operands bound to vs.
func entries(st *statement, vs values, now int64) ([]entry, error) {
	es := make([]entry, len(st.rows))
	for r, row := range st.rows {
		e := &es[r]
		for i, c := range st.cols {
			op := row[i]
			switch c {
			case colKey:
				k, null, err := vs.text(op, "key")
				if err != nil {
					return nil, err
				}
				if err := checkKey(k, null); err != nil {
					return nil, err
				}
				e.key = k
			case colValue:
				b, null, err := vs.bytes(op)
				if err != nil {
					return nil, err
				}
				if null {
					return nil, notNull("value")
				}
				if len(b) > maxValueLen {
					return nil, pgserver.Errorf(codeProgramLimit, "value is larger than %d bytes", maxValueLen)
				}
				e.value = b
			case colMetadata:
				b, null, err := vs.json(op)
				if err != nil {
					return nil, err
				}
				if len(b) > maxMetadataLen {
					return nil, pgserver.Errorf(codeProgramLimit, "metadata is larger than %d bytes", maxMetadataLen)
				}
				if !null {
					e.metadata = b
				}
			case colExpiration, colTTL:
				n, null, err := vs.integer(op)
				if err != nil {
					return nil, err
				}
				if null {
					continue
				}
				if c == colTTL {
					if n < 0 || n > math.MaxInt64-now {
						return nil, pgserver.Errorf(codeInvalidParameter, "expiration_ttl must be between 0 and %d seconds", int64(math.MaxInt64)-now)
					}
					n += now
				}
				e.expiration, e.expires = n, true
			}
		}
	}
	return es, nil
}

// checkKey refuses the keys Workers KV refuses: none, empty, or longer than 512 bytes.
func checkKey(k string, null bool) error {
	switch {
	case null:
		return notNull("key")
	case k == "":
		return pgserver.Errorf(codeInvalidParameter, "key must not be empty")
	case len(k) > maxKeyLen:
		return pgserver.Errorf(codeStringTooLong, "key is longer than %d bytes", maxKeyLen)
	}
	return nil
}

func notNull(col string) error {
	return pgserver.Errorf(codeNotNull, `null value in column "%s" of relation "kv" violates not-null constraint`, col)
}
