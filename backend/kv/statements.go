package kv

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// sessionStatement runs a session statement: SET, RESET, SHOW, set_config, DISCARD, DEALLOCATE and the
// transaction statements. With describe it first sends the RowDescription of one that returns
// a row.
func (s *session) sessionStatement(st *statement, describe bool) error {
	switch st.verb {
	case vSession:
		switch st.session.Verb {
		case pgserver.SetLocal:
			s.w.Notice(codeNoActiveTx, "SET LOCAL can only be used in transaction blocks")
		case pgserver.SetTransaction:
			// Isolation and access modes: there are no transactions for them to shape.
		default:
			return s.w.RunSession(st.session, describe)
		}
	case vDiscard:
		if st.tag == "DISCARD ALL" {
			s.w.CloseAll()
			s.w.Settings.ResetAll()
		}
	case vDeallocate:
		if st.name == "" {
			s.w.DeallocateAll()
		} else if err := s.w.Deallocate(st.name); err != nil {
			return err
		}
	case vBegin:
		return pgserver.Errorf(codeFeatureNotSupported, "a KV namespace has no transactions: every statement takes effect by itself")
	case vCommit, vRollback:
		s.w.Notice(codeNoActiveTx, "there is no transaction in progress")
	}
	s.w.Out = pgserver.AppendCommandComplete(s.w.Out, st.tag, 0, false)
	return nil
}

// answeredFields is the row description of a session statement that returns a row.
func answeredFields(st *statement) []pgproto3.FieldDescription {
	if st.verb == vSession {
		return pgserver.SessionFields(st.session)
	}
	return nil
}
