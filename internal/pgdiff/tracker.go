package pgdiff

import "github.com/jackc/pgx/v5/pgproto3"

// expect is an answer still due from the server.
type expect uint8

const (
	eParse    expect = iota // ParseComplete
	eBind                   // BindComplete
	eClose                  // CloseComplete
	eDescStmt               // ParameterDescription, then RowDescription or NoData
	eDescRows               // RowDescription or NoData
	eExecute                // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
	eSync                   // ReadyForQuery
	eQuery                  // anything, then ReadyForQuery
)

var expectNames = [...]string{"ParseComplete", "BindComplete", "CloseComplete", "ParameterDescription",
	"RowDescription/NoData", "Execute's end", "ReadyForQuery", "Query's ReadyForQuery"}

// tracker knows, from the messages sent, which answers PostgreSQL still owes: the harness reads
// until it owes nothing, so it never waits for silence.
type tracker struct {
	due      []expect
	copySent int  // CopyDone/CopyFail sent for COPY FROM STDIN not yet answered by CopyInResponse
	copyIn   bool // the server waits for COPY data
	skipping bool // an extended-protocol error: the server ignores everything up to Sync
	closed   bool // Terminate sent, or the server ended the connection
}

// sent records a frontend message.
func (t *tracker) sent(m pgproto3.FrontendMessage) {
	if _, ok := m.(*pgproto3.Sync); ok {
		t.skipping = false
		t.due = append(t.due, eSync)
		return
	}
	if t.skipping {
		return // PostgreSQL drops it unread (postgres.c: ignore_till_sync)
	}
	switch m := m.(type) {
	case *pgproto3.Parse:
		t.due = append(t.due, eParse)
	case *pgproto3.Bind:
		t.due = append(t.due, eBind)
	case *pgproto3.Close:
		t.due = append(t.due, eClose)
	case *pgproto3.Describe:
		if m.ObjectType == 'S' {
			t.due = append(t.due, eDescStmt)
		} else {
			t.due = append(t.due, eDescRows)
		}
	case *pgproto3.Execute:
		t.due = append(t.due, eExecute)
	case *pgproto3.Query:
		t.due = append(t.due, eQuery)
	case *pgproto3.CopyDone, *pgproto3.CopyFail:
		if t.copyIn {
			t.copyIn = false
		} else {
			t.copySent++
		}
	case *pgproto3.Terminate:
		t.closed = true
	}
}

// answers reports whether the message is one that makes the server answer what it owes.
func answers(m pgproto3.FrontendMessage) bool {
	switch m.(type) {
	case *pgproto3.Sync, *pgproto3.Flush, *pgproto3.Query, *pgproto3.CopyDone, *pgproto3.CopyFail, *pgproto3.Terminate:
		return true
	}
	return false
}

// waiting reports whether the server owes an answer the client can wait for now.
func (t *tracker) waiting() bool { return len(t.due) > 0 && !t.copyIn }

// got records a backend message.
func (t *tracker) got(m pgproto3.BackendMessage) {
	if len(t.due) == 0 {
		return // asynchronous: notices, parameter changes, notifications, a FATAL
	}
	head := t.due[0]
	switch m.(type) {
	case *pgproto3.CopyInResponse:
		if t.copySent > 0 {
			t.copySent--
		} else {
			t.copyIn = true
		}
	case *pgproto3.ParseComplete, *pgproto3.BindComplete, *pgproto3.CloseComplete:
		t.pop()
	case *pgproto3.ParameterDescription:
		if head == eDescStmt {
			t.due[0] = eDescRows
		}
	case *pgproto3.RowDescription, *pgproto3.NoData:
		if head == eDescRows {
			t.pop()
		}
	case *pgproto3.CommandComplete, *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		if head == eExecute {
			t.pop()
		}
	case *pgproto3.ErrorResponse:
		t.copyIn = false
		if head == eQuery {
			return
		}
		for len(t.due) > 0 && t.due[0] != eSync {
			t.pop()
		}
		t.skipping = len(t.due) == 0
	case *pgproto3.ReadyForQuery:
		t.pop()
	}
}

func (t *tracker) pop() { t.due = t.due[1:] }

// owed names what the server still owes, for a TIMEOUT line.
func (t *tracker) owed() []string {
	var names []string
	for _, e := range t.due {
		names = append(names, expectNames[e])
	}
	return names
}
