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
	case vSet:
		if st.deflt {
			s.w.Settings.Reset(st.name)
		} else if err := s.w.Settings.Set(st.name, st.value); err != nil {
			return err
		}
	case vSetLocal:
		s.w.Notice(codeNoActiveTx, "SET LOCAL can only be used in transaction blocks")
	case vSetNoop:
	case vReset:
		if st.name == "" {
			s.w.Settings.ResetAll()
		} else {
			s.w.Settings.Reset(st.name)
		}
	case vShow:
		v, ok := s.w.Settings.Get(st.name)
		if !ok {
			return pgserver.Errorf(codeUndefinedObject, "unrecognized configuration parameter %q", st.name)
		}
		if describe {
			s.w.Send(&pgproto3.RowDescription{Fields: answeredFields(st)})
		}
		s.w.Send(&pgproto3.DataRow{Values: [][]byte{[]byte(v)}})
	case vSetConfig:
		row := make([][]byte, len(st.pairs))
		for i, kv := range st.pairs {
			if err := s.w.Settings.Set(kv[0], kv[1]); err != nil {
				return err
			}
			row[i] = []byte(kv[1])
		}
		if describe {
			s.w.Send(&pgproto3.RowDescription{Fields: answeredFields(st)})
		}
		s.w.Send(&pgproto3.DataRow{Values: row})
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "SELECT", 1, true)
		return nil
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
	switch st.verb {
	case vShow:
		return pgserver.TextFields(st.name)
	case vSetConfig:
		names := make([]string, len(st.pairs))
		for i := range names {
			names[i] = "set_config"
		}
		return pgserver.TextFields(names...)
	}
	return nil
}
