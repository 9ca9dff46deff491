package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

var execModes = []struct {
	name string
	mode pgx.QueryExecMode
}{
	{"CacheStatement", pgx.QueryExecModeCacheStatement},
	{"CacheDescribe", pgx.QueryExecModeCacheDescribe},
	{"DescribeExec", pgx.QueryExecModeDescribeExec},
	{"Exec", pgx.QueryExecModeExec},
	{"SimpleProtocol", pgx.QueryExecModeSimpleProtocol},
}

// connectMode opens a pgx connection to url that runs queries in mode.
func connectMode(t testing.TB, ctx context.Context, url string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	return connectConfig(t, ctx, cfg)
}

// TestPgxWorksInEveryQueryExecMode runs the protocol paths pgx uses, in each of its query
// modes, through a serve instance with only two origin connections, so that clients contend
// for them and one client's consecutive transactions land on different connections.
func TestPgxWorksInEveryQueryExecMode(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	inst := startServeTOML(t, "", "max_connections = 2", `queue_timeout = "10s"`)

	// A function that raises a notice, to see notices in the extended protocol too.
	sfx := suffix()
	noticeFn := "e2e_notice_" + sfx
	admin := connect(t, ctx, directURL())
	if _, err := admin.Exec(ctx, `create function `+noticeFn+`(n int) returns int language plpgsql as $$
		begin raise notice 'notice number %', n; return n; end $$`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "drop function "+noticeFn) })

	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			t.Run("returns every type as PostgreSQL does", func(t *testing.T) {
				testPgxTypes(t, ctx, inst, m.mode)
			})
			t.Run("runs a batch of 20 queued queries", func(t *testing.T) {
				testPgxBatch(t, ctx, inst, m.mode)
			})
			t.Run("keeps prepared statements across transactions on other connections", func(t *testing.T) {
				testPgxPreparedUnderContention(t, ctx, inst, m.mode)
			})
			t.Run("reports an error mid-result and keeps working", func(t *testing.T) {
				testPgxErrorMidStream(t, ctx, inst, m.mode)
			})
			t.Run("answers an empty query", func(t *testing.T) {
				testPgxEmptyQuery(t, ctx, inst, m.mode)
			})
			t.Run("streams a large result and cursors in a transaction", func(t *testing.T) {
				testPgxLargeResultAndCursor(t, ctx, inst, m.mode)
			})
			t.Run("delivers notices", func(t *testing.T) {
				testPgxNotices(t, ctx, inst, m.mode, noticeFn)
			})
		})
	}
}

func testPgxTypes(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	queries := []struct {
		sql  string
		args []any
	}{
		{"select 1::int4 as one, 'two'::text as two, null::text as nothing, 2.50::numeric as num", nil},
		{`select $1::int4, $2::int8, $3::text, $4::numeric, $5::bytea, $6::timestamptz, $7::json, $8::jsonb,
			$9::int4[], $10::text[], $11::text, $12::bool, $13::float8, $14::uuid, $15::date`,
			[]any{int32(-42), int64(-1 << 40), "héllo 'quoted' \\ \"x\"", "12345.678900", []byte{0, 1, 2, 0xff, '\\'}, at,
				`{"a": [1, "b", null]}`, `{"k": true, "n": 1.50}`,
				[]int32{1, 2, 3}, []string{"a", "b c", `"q"`, ""}, nil, true, 3.25,
				"6ba7b810-9dad-11d1-80b4-00c04fd430c8", time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)}},
		{"select g, g::text, g % 3 = 0 from generate_series($1::int, $2::int) g", []any{1, 50}},
	}
	direct := connectMode(t, ctx, directURL(), mode)
	proxied := connectMode(t, ctx, inst.plainURL(), mode)
	for _, q := range queries {
		want := queryValues(t, ctx, direct, q.sql, q.args...)
		got := queryValues(t, ctx, proxied, q.sql, q.args...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nthrough slipstream: %v\ndirectly:           %v", q.sql, got, want)
		}
	}
	// A few values checked outright, in case both sides were wrong the same way.
	var (
		n    int32
		s    string
		null *string
		num  pgtype.Numeric
		b    []byte
		ts   time.Time
		arr  []int32
	)
	err := proxied.QueryRow(ctx, "select $1::int4, $2::text, $3::text, $4::numeric, $5::bytea, $6::timestamptz, $7::int4[]",
		int32(7), "ü", nil, "1.5", []byte{0, 0xfe}, at, []int32{4, 5}).Scan(&n, &s, &null, &num, &b, &ts, &arr)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := num.Float64Value()
	if n != 7 || s != "ü" || null != nil || f.Float64 != 1.5 || !bytes.Equal(b, []byte{0, 0xfe}) || !ts.Equal(at) || !reflect.DeepEqual(arr, []int32{4, 5}) {
		t.Errorf("got %v %q %v %v %x %v %v", n, s, null, f.Float64, b, ts, arr)
	}
}

// queryValues runs sql and returns every row's decoded values.
func queryValues(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) [][]any {
	t.Helper()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func testPgxBatch(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	conn := connectMode(t, ctx, inst.plainURL(), mode)
	table := "batch_" + suffix()
	if _, err := conn.Exec(ctx, "create table "+table+" (n int)"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "drop table "+table)
	b := &pgx.Batch{}
	for i := range 20 {
		if i%5 == 4 {
			b.Queue("insert into "+table+" values ($1)", i)
		} else {
			b.Queue("select $1::int * 2, $2::text", i, fmt.Sprint("row ", i))
		}
	}
	br := conn.SendBatch(ctx, b)
	for i := range 20 {
		if i%5 == 4 {
			tag, err := br.Exec()
			if err != nil || tag.String() != "INSERT 0 1" {
				t.Fatalf("batch item %d: %v %v", i, tag, err)
			}
			continue
		}
		var n int
		var s string
		if err := br.QueryRow().Scan(&n, &s); err != nil {
			t.Fatalf("batch item %d: %v", i, err)
		}
		if n != 2*i || s != fmt.Sprint("row ", i) {
			t.Fatalf("batch item %d: got %d %q", i, n, s)
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := conn.QueryRow(ctx, "select count(*) from "+table).Scan(&count); err != nil || count != 4 {
		t.Fatalf("rows inserted by the batch: %d, %v", count, err)
	}
}

// testPgxPreparedUnderContention runs 8 clients over 2 origin connections: each prepares a
// statement once and uses it in many transactions, which land on whichever connection is
// free.
func testPgxPreparedUnderContention(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	const clients, txs = 8, 25
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	pids := make([]map[uint32]bool, clients)
	for c := range clients {
		conn := connectMode(t, ctx, inst.plainURL(), mode)
		pids[c] = make(map[uint32]bool)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				<-start
				// The sleep keeps the connection busy long enough for the others to queue.
				if _, err := conn.Prepare(ctx, "add", "select $1::int + $2::int, pg_backend_pid() from pg_sleep(0.001)"); err != nil {
					return fmt.Errorf("prepare: %w", err)
				}
				for i := range txs {
					tx, err := conn.Begin(ctx)
					if err != nil {
						return err
					}
					var sum int
					var pid uint32
					if err := tx.QueryRow(ctx, "add", i, c).Scan(&sum, &pid); err != nil {
						tx.Rollback(ctx)
						return fmt.Errorf("client %d tx %d: prepared statement: %w", c, i, err)
					}
					if sum != i+c {
						return fmt.Errorf("client %d tx %d: add(%d, %d) = %d", c, i, i, c, sum)
					}
					pids[c][pid] = true
					// The mode's own statement handling (cached statements for the cache modes).
					var s string
					if err := tx.QueryRow(ctx, "select $1::text || '-' || $2::text", "c", fmt.Sprint(i)).Scan(&s); err != nil || s != fmt.Sprint("c-", i) {
						tx.Rollback(ctx)
						return fmt.Errorf("client %d tx %d: parameterized query: %q %w", c, i, s, err)
					}
					if err := tx.Commit(ctx); err != nil {
						return err
					}
					// And outside a transaction.
					if err := conn.QueryRow(ctx, "add", 1, 1).Scan(&sum, &pid); err != nil || sum != 2 {
						return fmt.Errorf("client %d after tx %d: prepared statement outside a transaction: %w", c, i, err)
					}
				}
				return conn.Deallocate(ctx, "add")
			}()
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	moved := 0
	for _, p := range pids {
		if len(p) > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("no client's transactions ran on more than one origin connection (%v): the test proved nothing", pids)
	}
}

func testPgxErrorMidStream(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	run := func(conn *pgx.Conn) (int, string) {
		rows, _ := conn.Query(ctx, "select 1/(g-5) from generate_series(1,10) g")
		n := 0
		for rows.Next() {
			n++
		}
		return n, sqlstate(rows.Err())
	}
	direct := connectMode(t, ctx, directURL(), mode)
	proxied := connectMode(t, ctx, inst.plainURL(), mode)
	wantRows, wantCode := run(direct)
	gotRows, gotCode := run(proxied)
	if gotCode != "22012" || gotRows != wantRows || wantCode != "22012" {
		t.Errorf("through slipstream: %d rows then %q; directly: %d rows then %q (want 22012)", gotRows, gotCode, wantRows, wantCode)
	}
	var n int
	if err := proxied.QueryRow(ctx, "select $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the error: %d, %v", n, err)
	}

	// In a transaction the error aborts it until ROLLBACK, as in PostgreSQL.
	tx, err := proxied.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, "select 1/(g-5) from generate_series(1,10) g where g > $1", 0)
	if sqlstate(err) != "22012" {
		t.Fatalf("in a transaction: %v, want 22012", err)
	}
	_, err = tx.Exec(ctx, "select $1::int", 1)
	if sqlstate(err) != "25P02" {
		t.Fatalf("next statement in the failed transaction: %v, want 25P02", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := proxied.QueryRow(ctx, "select $1::int + 1", 1).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after ROLLBACK: %d, %v", n, err)
	}
}

func testPgxEmptyQuery(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	for _, url := range []string{directURL(), inst.plainURL()} {
		conn := connectMode(t, ctx, url, mode)
		tag, err := conn.Exec(ctx, "")
		if err != nil || tag.String() != "" {
			t.Errorf("%s: empty simple query: tag %q, %v", url, tag, err)
		}
		tag, err = conn.Exec(ctx, " ; -- nothing")
		if err != nil || tag.String() != "" {
			t.Errorf("%s: query of only a semicolon and a comment: tag %q, %v", url, tag, err)
		}
		res := conn.PgConn().ExecParams(ctx, "", nil, nil, nil, nil).Read()
		if res.Err != nil || res.CommandTag.String() != "" || len(res.Rows) != 0 {
			t.Errorf("%s: empty extended query: %+v", url, res)
		}
		var n int
		if err := conn.QueryRow(ctx, "select 3").Scan(&n); err != nil || n != 3 {
			t.Errorf("%s: after the empty queries: %d, %v", url, n, err)
		}
	}
}

func testPgxLargeResultAndCursor(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode) {
	conn := connectMode(t, ctx, inst.plainURL(), mode)
	const n = 100_000
	rows, _ := conn.Query(ctx, "select g, repeat('x', 100 + g % 50) from generate_series(1, $1::int) g", n)
	var count, sum, bytes int
	for rows.Next() {
		var g int
		var s string
		if err := rows.Scan(&g, &s); err != nil {
			t.Fatal(err)
		}
		count++
		sum += g
		bytes += len(s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != n || sum != n*(n+1)/2 {
		t.Fatalf("large result: %d rows summing to %d, want %d rows summing to %d", count, sum, n, n*(n+1)/2)
	}

	// DECLARE / FETCH in a transaction: the cursor lives on the transaction's connection.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "declare c cursor for select g from generate_series(1, 25) g"); err != nil {
		t.Fatal(err)
	}
	var got []int
	for {
		rows, _ := tx.Query(ctx, "fetch 10 from c")
		batch, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		got = append(got, batch...)
	}
	if len(got) != 25 || got[0] != 1 || got[24] != 25 {
		t.Fatalf("fetched %v", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func testPgxNotices(t *testing.T, ctx context.Context, inst *instance, mode pgx.QueryExecMode, noticeFn string) {
	cfg, err := pgx.ParseConfig(inst.plainURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Severity+" "+n.Code+" "+n.Message)
		mu.Unlock()
	}
	conn := connectConfig(t, ctx, cfg)
	if _, err := conn.Exec(ctx, "do $$ begin raise notice 'hello %', 42; end $$"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "select "+noticeFn+"($1)", 7).Scan(&n); err != nil || n != 7 {
		t.Fatalf("%d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"NOTICE 00000 hello 42", "NOTICE 00000 notice number 7"}
	if !reflect.DeepEqual(notices, want) {
		t.Errorf("notices: %q, want %q", notices, want)
	}
}

// wireStep sends messages and reads the answers up to and including the until-th message of
// type untilType ('Z' for ReadyForQuery).
type wireStep struct {
	send      []pgproto3.FrontendMessage
	untilType byte
	until     int
}

// wireConn is a connection taken over after pgconn's handshake, for raw protocol scripts.
type wireConn struct {
	t  *testing.T
	hc *pgconn.HijackedConn
}

func dialWire(t *testing.T, ctx context.Context, url string) *wireConn {
	t.Helper()
	pc, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// pgconn may have a background read in flight; it must end before the socket is ours.
	if err := pc.SyncConn(ctx); err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hc.Frontend.Send(&pgproto3.Terminate{})
		hc.Frontend.Flush()
		hc.Conn.Close()
	})
	hc.Conn.SetDeadline(time.Now().Add(60 * time.Second)) // a missing answer fails the test, not hangs it; generous for -race on 2 busy cores
	return &wireConn{t: t, hc: hc}
}

// do runs one step and returns its answers, one line each.
func (w *wireConn) do(st wireStep) []string {
	w.t.Helper()
	f := w.hc.Frontend
	for _, m := range st.send {
		f.Send(m)
	}
	if err := f.Flush(); err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for seen := 0; seen < max(st.until, 1); {
		msg, err := f.Receive()
		if err != nil {
			w.t.Fatalf("after %q: %v", out, err)
		}
		line, typ := describeBackend(msg)
		out = append(out, line)
		if typ == st.untilType {
			seen++
		}
	}
	return out
}

// wireTranscript runs the steps on a new connection to url and returns every answer.
func wireTranscript(t *testing.T, ctx context.Context, url string, steps []wireStep) []string {
	t.Helper()
	w := dialWire(t, ctx, url)
	var out []string
	for _, st := range steps {
		out = append(out, w.do(st)...)
	}
	return out
}

// describeBackend renders a backend message for comparison, leaving out what may differ
// between two connections (process ids, secret keys).
func describeBackend(msg pgproto3.BackendMessage) (string, byte) {
	switch m := msg.(type) {
	case *pgproto3.ParseComplete:
		return "ParseComplete", '1'
	case *pgproto3.BindComplete:
		return "BindComplete", '2'
	case *pgproto3.CloseComplete:
		return "CloseComplete", '3'
	case *pgproto3.NoData:
		return "NoData", 'n'
	case *pgproto3.PortalSuspended:
		return "PortalSuspended", 's'
	case *pgproto3.EmptyQueryResponse:
		return "EmptyQueryResponse", 'I'
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag), 'C'
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus), 'Z'
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = fmt.Sprintf("%q", v)
			}
		}
		return "DataRow " + strings.Join(vals, ","), 'D'
	case *pgproto3.RowDescription:
		var b strings.Builder
		b.WriteString("RowDescription")
		for _, fd := range m.Fields {
			fmt.Fprintf(&b, " %s:%d:%d", fd.Name, fd.DataTypeOID, fd.Format)
		}
		return b.String(), 'T'
	case *pgproto3.ParameterDescription:
		return fmt.Sprint("ParameterDescription ", m.ParameterOIDs), 't'
	case *pgproto3.ErrorResponse:
		return "ErrorResponse " + m.Severity + " " + m.Code + " " + m.Message, 'E'
	case *pgproto3.NoticeResponse:
		return "NoticeResponse " + m.Severity + " " + m.Code + " " + m.Message, 'N'
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name + "=" + m.Value, 'S'
	case *pgproto3.CopyInResponse:
		return fmt.Sprint("CopyInResponse ", m.OverallFormat, m.ColumnFormatCodes), 'G'
	case *pgproto3.CopyOutResponse:
		return fmt.Sprint("CopyOutResponse ", m.OverallFormat, m.ColumnFormatCodes), 'H'
	case *pgproto3.CopyData:
		return fmt.Sprintf("CopyData %q", m.Data), 'd'
	case *pgproto3.CopyDone:
		return "CopyDone", 'c'
	}
	return fmt.Sprintf("%T", msg), '?'
}

// TestExtendedProtocolAnswersAsPostgreSQLDoes sends raw extended-protocol messages (portals
// with a row limit, named portals across Syncs in a transaction, Describe, errors in a
// pipeline, Flush) directly and through slipstream, and requires the same answers.
func TestExtendedProtocolAnswersAsPostgreSQLDoes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 2", `queue_timeout = "10s"`)
	// Other clients keep the two origin connections changing hands meanwhile.
	churnCtx, stopChurn := context.WithCancel(ctx)
	defer stopChurn()
	var churn sync.WaitGroup
	for range 3 {
		conn := connect(t, ctx, inst.plainURL())
		churn.Add(1)
		go func() {
			defer churn.Done()
			for churnCtx.Err() == nil {
				conn.Exec(churnCtx, "select pg_sleep(0.002)")
			}
		}()
	}
	defer churn.Wait()
	defer stopChurn()

	copyTable := "wire_copy_" + suffix()
	admin := connect(t, ctx, directURL())
	if _, err := admin.Exec(ctx, "create table "+copyTable+" (i int, s text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "drop table "+copyTable) })
	inTx := func(steps ...wireStep) []wireStep {
		steps = append([]wireStep{{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "begin"}}, untilType: 'Z', until: 1}}, steps...)
		return append(steps,
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "select count(*), string_agg(s, ',' order by i) from " + copyTable}}, untilType: 'Z', until: 1},
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "rollback"}}, untilType: 'Z', until: 1})
	}
	series := func(n int) string { return fmt.Sprintf("select g from generate_series(1,%d) g", n) }
	scripts := []struct {
		name  string
		steps []wireStep
	}{
		{"an unnamed portal executed three times with a row limit", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: series(10)},
			&pgproto3.Bind{},
			&pgproto3.Execute{MaxRows: 3},
			&pgproto3.Execute{MaxRows: 3},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}, untilType: 'Z', until: 1}}},
		{"a named portal in a transaction fetched across Syncs", []wireStep{
			{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "begin"}}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{
				&pgproto3.Parse{Name: "s1", Query: series(7)},
				&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "s1"},
				&pgproto3.Execute{Portal: "p1", MaxRows: 2},
				&pgproto3.Sync{},
			}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Execute{Portal: "p1", MaxRows: 2}, &pgproto3.Sync{}}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'P', Name: "p1"}, &pgproto3.Execute{Portal: "p1"}, &pgproto3.Sync{}}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'P', Name: "p1"}, &pgproto3.Close{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{}}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "commit"}}, untilType: 'Z', until: 1},
		}},
		{"a named statement described, then bound in text and binary", []wireStep{
			{send: []pgproto3.FrontendMessage{
				&pgproto3.Parse{Name: "s2", Query: "select $1::int + 1 as n, $2::text as t"},
				&pgproto3.Describe{ObjectType: 'S', Name: "s2"},
				&pgproto3.Sync{},
			}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{
				&pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte("41"), []byte("x")}},
				&pgproto3.Execute{},
				&pgproto3.Bind{PreparedStatement: "s2", ParameterFormatCodes: []int16{1, 0}, Parameters: [][]byte{{0, 0, 0, 9}, nil}, ResultFormatCodes: []int16{1}},
				&pgproto3.Describe{ObjectType: 'P'},
				&pgproto3.Execute{},
				&pgproto3.Sync{},
			}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "select 'between'"}}, untilType: 'Z', until: 1},
			{send: []pgproto3.FrontendMessage{
				&pgproto3.Bind{PreparedStatement: "s2", Parameters: [][]byte{[]byte("1"), []byte("again")}},
				&pgproto3.Execute{},
				&pgproto3.Sync{},
			}, untilType: 'Z', until: 1},
		}},
		{"an error in a pipeline skips to the Sync", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: "select 1/0"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Parse{Query: "select 2"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Parse{Query: "select 3"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}, untilType: 'Z', until: 2}}},
		{"an unknown statement name is an error", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Bind{PreparedStatement: "nope"},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}, untilType: 'Z', until: 1}}},
		{"a Flush returns answers before the Sync", []wireStep{
			{send: []pgproto3.FrontendMessage{
				&pgproto3.Parse{Query: "select 42"},
				&pgproto3.Bind{},
				&pgproto3.Execute{},
				&pgproto3.Flush{},
			}, untilType: 'C', until: 1},
			{send: []pgproto3.FrontendMessage{&pgproto3.Sync{}}, untilType: 'Z', until: 1},
		}},
		{"several statements in one simple query", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "select 1; select 'a', null; ; select 1/0; select 2"},
		}, untilType: 'Z', until: 1}}},
		// The client sends its data without waiting for CopyInResponse, as pgconn and libpq may.
		{"COPY FROM STDIN sent in one go with its data", inTx(wireStep{send: []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "copy " + copyTable + " from stdin"},
			&pgproto3.CopyData{Data: []byte("1\tone\n2\ttwo\n")},
			&pgproto3.CopyDone{},
		}, untilType: 'Z', until: 1})},
		{"COPY FROM STDIN with data after the CopyInResponse", inTx(
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "copy " + copyTable + " from stdin"}}, untilType: 'G', until: 1},
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("3\tthree\n")}, &pgproto3.CopyDone{}}, untilType: 'Z', until: 1},
		)},
		{"COPY FROM STDIN failed by the client", inTx(
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "copy " + copyTable + " from stdin"}}, untilType: 'G', until: 1},
			wireStep{send: []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte("4\tfour\n")}, &pgproto3.CopyFail{Message: "client gave up"}}, untilType: 'Z', until: 1},
		)},
		{"COPY TO STDOUT", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Query{String: "copy (select g, 'x' || g from generate_series(1, 3) g) to stdout"},
		}, untilType: 'Z', until: 1}, {send: []pgproto3.FrontendMessage{&pgproto3.Query{String: "select 'after'"}}, untilType: 'Z', until: 1}}},
		{"an empty extended query", []wireStep{{send: []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: ""},
			&pgproto3.Bind{},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}, untilType: 'Z', until: 1}}},
	}
	for _, s := range scripts {
		t.Run(s.name, func(t *testing.T) {
			want := wireTranscript(t, ctx, directURL(), s.steps)
			got := wireTranscript(t, ctx, inst.plainURL(), s.steps)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answers differ\nthrough slipstream:\n  %s\ndirectly:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// TestCopyInAndOutMatchesPostgreSQL copies 10,000 rows in through slipstream and out again,
// both ways, and compares with what PostgreSQL gives directly.
func TestCopyInAndOutMatchesPostgreSQL(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	conn := connect(t, ctx, inst.plainURL())
	direct := connect(t, ctx, directURL())
	table := "copy_" + suffix()
	if _, err := direct.Exec(ctx, "create table "+table+" (id int primary key, name text, amount numeric, at timestamptz, data bytea, tags text[])"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })

	const n = 10_000
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range rows {
		var name any = fmt.Sprintf("name %d\twith tab, \"quotes\" and \\", i)
		if i%100 == 0 {
			name = nil
		}
		rows[i] = []any{i, name, fmt.Sprintf("%d.%02d", i, i%100), base.Add(time.Duration(i) * time.Minute), []byte{byte(i), byte(i >> 8), 0}, []string{"a", fmt.Sprint(i)}}
	}
	cols := []string{"id", "name", "amount", "at", "data", "tags"}
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	if err != nil || copied != n {
		t.Fatalf("CopyFrom through slipstream: %d rows, %v", copied, err)
	}

	// A text COPY FROM STDIN as well (psql's and most tools' form).
	tag, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("100000\ttext row\t1.5\t2024-01-01 00:00:00+00\t\\\\x00ff\t{x}\n100001\t\\N\t\\N\t\\N\t\\N\t\\N\n"),
		"copy "+table+" from stdin")
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("text COPY FROM STDIN: %v, %v", tag, err)
	}

	for _, format := range []string{"text", "csv", "binary"} {
		sql := fmt.Sprintf("copy (select * from %s order by id) to stdout with (format %s)", table, format)
		var got, want bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &got, sql); err != nil {
			t.Fatalf("COPY TO STDOUT (%s) through slipstream: %v", format, err)
		}
		if _, err := direct.PgConn().CopyTo(ctx, &want, sql); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("COPY TO STDOUT (%s): %d bytes through slipstream, %d directly, and they differ", format, got.Len(), want.Len())
		}
		if format == "text" && strings.Count(got.String(), "\n") != n+2 {
			t.Errorf("COPY TO STDOUT: %d lines, want %d", strings.Count(got.String(), "\n"), n+2)
		}
	}

	// A COPY that fails (duplicate key) reports the error and leaves the connection usable.
	_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id"}, pgx.CopyFromRows([][]any{{1}}))
	if sqlstate(err) != "23505" {
		t.Fatalf("duplicate key in COPY: %v, want 23505", err)
	}
	// A COPY the client aborts (an error in its own row source).
	_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id"}, pgx.CopyFromFunc(func() ([]any, error) {
		return nil, errors.New("client gave up")
	}))
	if err == nil {
		t.Fatal("a COPY the client aborted succeeded")
	}
	var count int
	if err := conn.QueryRow(ctx, "select count(*) from "+table).Scan(&count); err != nil || count != n+2 {
		t.Fatalf("after the failed COPYs: %d rows, %v", count, err)
	}
}

// cancelConfig is a pgx config whose context cancellation sends a CancelRequest and keeps the
// connection, instead of closing it.
func cancelConfig(t *testing.T, url string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	return cfg
}

// TestCancelStopsOnlyTheCancelledQuery cancels a long query by context (pgx sends a
// CancelRequest with the BackendKeyData it got) while another client's query runs, directly
// and through slipstream.
func TestCancelStopsOnlyTheCancelledQuery(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	for _, target := range []struct{ name, url string }{{"directly", directURL()}, {"through slipstream", inst.plainURL()}} {
		t.Run(target.name, func(t *testing.T) {
			a := connectConfig(t, ctx, cancelConfig(t, target.url))
			b := connectConfig(t, ctx, cancelConfig(t, target.url))
			bErr := make(chan error, 1)
			started := make(chan struct{})
			go func() {
				close(started)
				_, err := b.Exec(ctx, "select pg_sleep(1)")
				bErr <- err
			}()
			<-started
			qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := a.Exec(qctx, "select pg_sleep(30)")
			took := time.Since(start)
			if sqlstate(err) != "57014" {
				t.Errorf("cancelled query: %v, want SQLSTATE 57014", err)
			}
			if took > 5*time.Second {
				t.Errorf("cancelled query returned after %v", took)
			}
			var n int
			if err := a.QueryRow(ctx, "select 5").Scan(&n); err != nil || n != 5 {
				t.Errorf("the cancelled client's next query: %d, %v", n, err)
			}
			if err := <-bErr; err != nil {
				t.Errorf("the other client's query: %v, want it to finish", err)
			}
		})
	}
	// A CancelRequest with a key nobody has is ignored, and breaks nothing.
	t.Run("a CancelRequest with an unknown key is ignored", func(t *testing.T) {
		conn := connect(t, ctx, inst.plainURL())
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", pgAddr(t, inst))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		f := pgproto3.NewFrontend(nc, nc)
		f.Send(&pgproto3.CancelRequest{ProcessID: 12345, SecretKey: []byte{1, 2, 3, 4}})
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
			t.Errorf("answer to a CancelRequest: %q, %v; want the connection closed with nothing sent", b, err)
		}
		var n int
		if err := conn.QueryRow(ctx, "select 6").Scan(&n); err != nil || n != 6 {
			t.Errorf("%d, %v", n, err)
		}
	})
}

// TestTLSConnectsWithRequireAndVerifyFull connects over TLS through slipstream, verifying the
// self-signed certificate serve wrote to its data directory.
func TestTLSConnectsWithRequireAndVerifyFull(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	cert := filepath.Join(inst.DataDir, "tls", "server.crt")
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"sslmode=require", inst.URL("sslmode", "require")},
		{"sslmode=verify-full", inst.URL("sslmode", "verify-full", "sslrootcert", cert)},
		{"sslmode=verify-ca", inst.URL("sslmode", "verify-ca", "sslrootcert", cert)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := connect(t, ctx, tc.url)
			if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
				t.Errorf("connection is %T, not TLS", conn.PgConn().Conn())
			}
			var n int
			if err := conn.QueryRow(ctx, "select $1::int", 9).Scan(&n); err != nil || n != 9 {
				t.Errorf("%d, %v", n, err)
			}
		})
	}
	t.Run("verify-full for another host name fails", func(t *testing.T) {
		u := strings.Replace(inst.URL("sslmode", "verify-full", "sslrootcert", cert), "127.0.0.1", "127.0.0.2", 1)
		cfg, err := pgconn.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		if pc, err := pgconn.ConnectConfig(ctx, cfg); err == nil {
			pc.Close(ctx)
			t.Error("connected although the certificate does not name 127.0.0.2")
		}
	})
}

// TestAuthMethodsFromTheConfigFile logs in with auth_method md5 and password (cleartext, over
// TLS) as set in the TOML file.
func TestAuthMethodsFromTheConfigFile(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	t.Run("md5", func(t *testing.T) {
		t.Parallel()
		inst := startServeTOML(t, "", `auth_method = "md5"`)
		if got := firstAuthRequest(t, ctx, inst); got != "*pgproto3.AuthenticationMD5Password" {
			t.Errorf("edge asked for %s, want md5", got)
		}
		conn := connect(t, ctx, inst.plainURL())
		var n int
		if err := conn.QueryRow(ctx, "select $1::int", 3).Scan(&n); err != nil || n != 3 {
			t.Errorf("%d, %v", n, err)
		}
		bad := strings.Replace(inst.plainURL(), pgtest.AppPassword, "wrong", 1)
		if _, err := pgconn.Connect(ctx, bad); sqlstate(err) != "28P01" {
			t.Errorf("wrong password with md5: %v, want 28P01", err)
		}
	})
	t.Run("password over TLS", func(t *testing.T) {
		t.Parallel()
		inst := startServeTOML(t, "", `auth_method = "password"`)
		conn := connect(t, ctx, inst.URL("sslmode", "require"))
		var n int
		if err := conn.QueryRow(ctx, "select $1::int", 4).Scan(&n); err != nil || n != 4 {
			t.Errorf("%d, %v", n, err)
		}
	})
	t.Run("md5 user at the origin", func(t *testing.T) {
		t.Parallel()
		// The origin itself asks the pool for md5 (pg_hba: md5user md5).
		origin := srv.URL(pgtest.MD5User, pgtest.MD5Password, pgtest.AppDB)
		inst := runServe(t, []string{"--origin", origin})
		conn := connect(t, ctx, withQuery(inst.PGURL, "sslmode", "disable"))
		var user string
		if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil || user != pgtest.MD5User {
			t.Errorf("current_user %q, %v", user, err)
		}
	})
}

// firstAuthRequest sends a StartupMessage for app and returns the type of the first answer.
func firstAuthRequest(t *testing.T, ctx context.Context, inst *instance) string {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", pgAddr(t, inst))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	f := pgproto3.NewFrontend(nc, nc)
	f.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pgtest.AppUser, "database": pgtest.AppDB}})
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := f.Receive()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%T", msg)
}

// TestUnnamedStatementOutlivesOtherClientsQueries: a client parses the unnamed statement and
// syncs, another client runs a simple query (which, in PostgreSQL, drops the unnamed statement
// of the connection it runs on), then the first client binds the unnamed statement. With one
// origin connection both run on the same one; the first client must not notice. pgx's
// DescribeExec mode does exactly this for every query.
func TestUnnamedStatementOutlivesOtherClientsQueries(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 1")
	for _, other := range []struct {
		name string
		run  func(t *testing.T, url string)
	}{
		{"simple query", func(t *testing.T, url string) {
			if _, err := connect(t, ctx, url).Exec(ctx, "select 1"); err != nil {
				t.Fatal(err)
			}
		}},
		// Only named statements, but other settings: the pool's own settings query runs first.
		{"extended query with other settings", func(t *testing.T, url string) {
			b := connect(t, ctx, withQuery(url, "application_name", "other_client"))
			var n int
			if err := b.QueryRow(ctx, "select $1::int", 5).Scan(&n); err != nil || n != 5 {
				t.Fatalf("%d, %v", n, err)
			}
		}},
	} {
		t.Run("after another client's "+other.name, func(t *testing.T) {
			for _, target := range []struct{ name, url string }{{"directly", directURL()}, {"through slipstream", inst.plainURL()}} {
				a := dialWire(t, ctx, target.url)
				a.do(wireStep{send: []pgproto3.FrontendMessage{
					&pgproto3.Parse{Query: "select 41 + 1"},
					&pgproto3.Describe{ObjectType: 'S'},
					&pgproto3.Sync{},
				}, untilType: 'Z', until: 1})
				other.run(t, target.url)
				got := a.do(wireStep{send: []pgproto3.FrontendMessage{
					&pgproto3.Bind{},
					&pgproto3.Execute{},
					&pgproto3.Sync{},
				}, untilType: 'Z', until: 1})
				want := []string{"BindComplete", `DataRow "42"`, "CommandComplete SELECT 1", "ReadyForQuery I"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: Bind of the unnamed statement answered\n  %s\nwant\n  %s", target.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			}
		})
	}
}

// TestACancelOfAQueryWaitingForAnOriginConnectionCancelsIt: with the only origin connection
// held by another client's transaction, a query waits in the pool's queue; its client cancels
// it (a CancelRequest, as pgx sends on a context's end). PostgreSQL would cancel the query;
// Slipstream sends the cancel once the query is on a connection, so the query ends with 57014
// as soon as it gets one, not after running its 30 s.
func TestACancelOfAQueryWaitingForAnOriginConnectionCancelsIt(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 1", `queue_timeout = "20s"`)
	holder := connect(t, ctx, inst.plainURL())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	a := connectConfig(t, ctx, cancelConfig(t, inst.plainURL()))
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Exec(qctx, "select pg_sleep(30)")
		done <- err
	}()
	// The cancel reaches Slipstream while the query waits for the connection.
	if err := eventually(ctx, func() error {
		if v, _ := metricValue(inst.metrics(t), "slipstream_cancel_requests_total", `outcome="sent"`); v < 1 {
			return errors.New("no CancelRequest handled yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if sqlstate(err) != "57014" {
		t.Errorf("the query cancelled while it waited: %v, want SQLSTATE 57014", err)
	}
	if took := time.Since(released); took > 5*time.Second {
		t.Errorf("it ended %v after it got the connection", took)
	}
	var n int
	if err := a.QueryRow(ctx, "select 5").Scan(&n); err != nil || n != 5 {
		t.Errorf("the cancelled client's next query: %d, %v", n, err)
	}
}
