package sessionstate

import (
	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Statement is one of a client's prepared statements as it prepared it.
type Statement struct {
	Query string
	Types []byte // parameter type OIDs, as in the Parse message
	// Unsure: the origin may hold another statement under this name, or none: a Parse of it
	// came in a batch that failed (a Parse after the error is skipped; one of a name in use is
	// refused with 42P05), or gave a name in use another text. A Bind of it is never keyed by
	// Query (the cache must not answer for a statement the origin does not hold).
	Unsure bool
}

// PG is a PostgreSQL session's state as the edge follows it from the messages it forwards and
// the answers it passes back.
//
// Settings change only by a batch of nothing but SETs, RESETs, DISCARD ALL or DEALLOCATE ALL,
// one whole unit outside a transaction block: what such a batch did is known from its answer
// alone. Its changes are staged (StageBatch) and applied once it is answered without an error
// outside a transaction block (Answered). Any other change (a SET in a transaction block, beside
// other statements, a failed batch of them) makes the session Dirty: its answers are its own
// from then on, and it is not set up again elsewhere.
type PG struct {
	Settings Settings
	// Statements are the client's named prepared statements; Unnamed its unnamed one.
	Statements map[string]Statement
	Unnamed    Statement
	// Tx is the client's transaction status, from the last ReadyForQuery it got.
	Tx byte
	// Dirty: the session changed state it can't follow.
	Dirty bool
	// MidUnit: the last batch ended without Sync or Query: the next one continues its unit.
	MidUnit bool

	stagedDrops  bool     // the staged batch deallocates every prepared statement
	stagedFailed bool     // an error came before the staged batch's ReadyForQuery
	parsed       []string // the names the batch being answered parses ("" for the unnamed)
}

// NewPG returns the state of a session that has just started: idle, nothing set or prepared.
func NewPG() *PG {
	return &PG{Statements: make(map[string]Statement), Tx: 'I'}
}

// BeginBatch starts following a batch of the client's messages: the one before it has had
// its whole answer, unless it ended mid-unit.
func (s *PG) BeginBatch() {
	if !s.MidUnit {
		s.parsed = s.parsed[:0]
	}
}

// Prepare follows a Parse: name ("" for the unnamed statement) is now st, unless the name is
// in use: PostgreSQL then refuses the Parse (42P05) and keeps the statement it has; if the
// texts differ, the session may have deallocated it by SQL, which is not followed, so the
// statement is Unsure.
func (s *PG) Prepare(name string, st Statement) {
	s.parsed = append(s.parsed, name)
	if name == "" {
		s.Unnamed = st
		return
	}
	if old, ok := s.Statements[name]; ok {
		if old.Query != st.Query || string(old.Types) != string(st.Types) {
			old.Unsure = true
			s.Statements[name] = old
		}
		return
	}
	s.Statements[name] = st
}

// failedParses marks what the batch parsed Unsure: an error came in its answer, and a Parse
// after it (up to the Sync) created nothing.
func (s *PG) failedParses() {
	for _, name := range s.parsed {
		if name == "" {
			s.Unnamed.Unsure = true
		} else if st, ok := s.Statements[name]; ok {
			st.Unsure = true
			s.Statements[name] = st
		}
	}
}

// Statement returns the statement of that name (the unnamed one for ""), if the session has it.
func (s *PG) Statement(name string) (Statement, bool) {
	if name == "" {
		return s.Unnamed, true
	}
	st, ok := s.Statements[name]
	return st, ok
}

// Close follows a Close of a named statement: it is forgotten.
func (s *PG) Close(name string) {
	if name != "" {
		delete(s.Statements, name)
	}
}

// Pending reports whether a batch's settings wait for its answer.
func (s *PG) Pending() bool { return s.Settings.Staged() || s.stagedDrops }

// Followable reports whether a statement text with effect e changes the session's settings
// in a way the session can follow from its answer alone: it holds nothing but SETs and RESETs
// (or is one DISCARD ALL or DEALLOCATE ALL), pins nothing, changes no catalog, and runs outside
// a transaction block. A batch of nothing but followable texts is staged (StageBatch).
func (s *PG) Followable(e classify.Effect) bool {
	alone := e.Statements == len(e.Settings) || e.DropsPrepared && e.Statements == 1
	return s.Tx == 'I' && e.Pin == "" && !e.CatalogChange && alone
}

// StageBatch takes the settings a batch makes and whether it deallocates every prepared
// statement (DISCARD ALL, DEALLOCATE ALL). followable: the batch is one whole unit of nothing
// but such statements, outside a transaction block; they are staged for Answered. Any other
// change makes the session dirty.
func (s *PG) StageBatch(sets []classify.Setting, drops, followable bool) {
	switch {
	case len(sets) == 0 && !drops:
	case followable && !s.Pending():
		s.Settings.Stage(sets...)
		s.stagedDrops = drops
	default:
		s.Dirty = true
	}
}

// Answered takes a run of answers: status is the last ReadyForQuery's (0 for none), failed
// whether an error came among them. At a ReadyForQuery it notes the transaction status and
// applies or drops the staged settings; a batch that failed or left a transaction open may
// have made some of them, so the session can no longer tell them, and becomes dirty. It
// reports whether the settings in force changed.
func (s *PG) Answered(status byte, failed bool) (changed bool) {
	if failed {
		s.failedParses()
	}
	if status != 0 {
		defer func() { s.Tx = status }()
	}
	if !s.Pending() {
		return false
	}
	if s.stagedFailed = s.stagedFailed || failed; status == 0 {
		return false
	}
	if s.stagedFailed || status != 'I' {
		s.Dirty = true
		s.Settings.Drop()
	} else {
		if s.stagedDrops {
			clear(s.Statements)
			s.Unnamed = Statement{}
		}
		// DISCARD ALL or RESET ALL: with the settings goes whatever made the session dirty (a
		// SET in a transaction block); a pinned session stays uncached anyway.
		if s.Settings.Commit() {
			s.Dirty = s.Dirty && !s.stagedDrops
		}
		changed = true
	}
	s.stagedDrops, s.stagedFailed = false, false
	return changed
}

// Quiet reports whether the session is idle at a boundary with nothing it can't follow: outside
// a transaction, between units, nothing staged, not dirty.
func (s *PG) Quiet() bool {
	return s.Tx == 'I' && !s.Dirty && !s.MidUnit && !s.Pending()
}

// AppendParses appends a Parse message for each statement the session has prepared, as the
// client sent it: what a new pool side must be told of to serve the session.
func (s *PG) AppendParses(dst []byte) []byte {
	add := func(name string, st Statement) {
		var at int
		dst, at = pgwire.BeginFrame(dst, 'P')
		dst = append(append(dst, name...), 0)
		dst = append(append(dst, st.Query...), 0)
		dst = pgwire.FinishFrame(append(dst, st.Types...), at)
	}
	for name, st := range s.Statements {
		add(name, st)
	}
	if s.Unnamed.Query != "" {
		add("", s.Unnamed)
	}
	return dst
}
