package d1

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestValuesRoundTripInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			if _, err := c.Exec(ctx, `CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, n TEXT, ok BOOLEAN)`); err != nil {
				t.Fatal(err)
			}
			tag, err := c.Exec(ctx, `INSERT INTO v (i, f, s, b, n, ok) VALUES ($1, $2, $3, $4, $5, $6)`,
				int64(-42), 2.5, "héllo 'x'", []byte{0, 1, 0xfe, 0xff}, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			if tag.String() != "INSERT 0 1" {
				t.Errorf("tag = %q, want INSERT 0 1", tag)
			}
			var (
				i  int64
				f  float64
				s  string
				b  []byte
				n  *string
				ok bool
			)
			err = c.QueryRow(ctx, `SELECT i, f, s, b, n, ok FROM v WHERE i = $1`, int64(-42)).Scan(&i, &f, &s, &b, &n, &ok)
			if err != nil {
				t.Fatal(err)
			}
			if i != -42 || f != 2.5 || s != "héllo 'x'" || !bytes.Equal(b, []byte{0, 1, 0xfe, 0xff}) || n != nil || !ok {
				t.Errorf("got %v %v %q %x %v %v", i, f, s, b, n, ok)
			}
			var count int64
			if err := c.QueryRow(ctx, `SELECT count(*) FROM v WHERE ok = $1 AND b = $2`, true, []byte{0, 1, 0xfe, 0xff}).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if count != 1 {
				t.Errorf("count = %d, want 1", count)
			}
		})
	}
}

func TestUniqueViolationIs23505InEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			if _, err := c.Exec(ctx, `CREATE TABLE u (k TEXT PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, `INSERT INTO u VALUES ($1)`, "a"); err != nil {
				t.Fatal(err)
			}
			_, err := c.Exec(ctx, `INSERT INTO u VALUES ($1)`, "a")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23505" {
				t.Fatalf("err = %v, want SQLSTATE 23505", err)
			}
			// The session goes on.
			var n int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM u`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("count = %d, %v", n, err)
			}
		})
	}
}

func TestSyntaxErrorIs42601InEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			_, err := c.Exec(ctx, `SELEC 1`)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42601" {
				t.Fatalf("err = %v, want SQLSTATE 42601", err)
			}
			var one int
			if err := c.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
				t.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		})
	}
}

func TestTransactionsCommitAndRollBackInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			if _, err := c.Exec(ctx, `CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
				t.Fatal(err)
			}
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO a (v) VALUES ($1)`, "rolled back"); err != nil {
				t.Fatal(err)
			}
			if st := c.PgConn().TxStatus(); st != 'T' {
				t.Errorf("status in transaction = %c, want T", st)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO a (v) VALUES ($1)`, "committed")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := c.Query(ctx, `SELECT v FROM a ORDER BY id`)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != "committed" {
				t.Errorf("rows = %q, want [committed]", got)
			}
			// A failed statement fails the transaction until ROLLBACK, as in PostgreSQL.
			tx, err = c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO nope VALUES (1)`); err == nil {
				t.Fatal("insert into a missing table succeeded")
			}
			if st := c.PgConn().TxStatus(); st != 'E' {
				t.Errorf("status after error = %c, want E", st)
			}
			_, err = tx.Exec(ctx, `SELECT 1`)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "25P02" {
				t.Errorf("statement in failed transaction: %v, want 25P02", err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if st := c.PgConn().TxStatus(); st != 'I' {
				t.Errorf("status after rollback = %c, want I", st)
			}
		})
	}
}

func TestBatchRunsInEveryQueryExecModeAndIsAtomic(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			if _, err := c.Exec(ctx, `CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			batch := &pgx.Batch{}
			batch.Queue(`INSERT INTO b (id, v) VALUES ($1, $2)`, int64(1), "one")
			batch.Queue(`INSERT INTO b (id, v) VALUES ($1, $2)`, int64(2), "two")
			batch.Queue(`SELECT count(*) FROM b`)
			br := c.SendBatch(ctx, batch)
			for i := 0; i < 2; i++ {
				if _, err := br.Exec(); err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			if err := br.QueryRow().Scan(&n); err != nil {
				t.Fatal(err)
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("count in batch = %d, want 2", n)
			}
			// A batch that fails part way leaves nothing behind: it is one implicit transaction.
			batch = &pgx.Batch{}
			batch.Queue(`INSERT INTO b (id, v) VALUES ($1, $2)`, int64(3), "three")
			batch.Queue(`INSERT INTO b (id, v) VALUES ($1, $2)`, int64(1), "duplicate")
			err := c.SendBatch(ctx, batch).Close()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23505" {
				t.Fatalf("failing batch: %v, want 23505", err)
			}
			if err := c.QueryRow(ctx, `SELECT count(*) FROM b`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("rows after failed batch = %d, want 2", n)
			}
		})
	}
}

func TestLimitReturnsManyRowsInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			_, err := c.Exec(ctx, `CREATE TABLE m (id INTEGER PRIMARY KEY, v TEXT);
				WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 5000)
				INSERT INTO m SELECT x, 'row ' || x FROM n`)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := c.Query(ctx, `SELECT id, v FROM m WHERE id > $1 ORDER BY id LIMIT $2`, int64(100), int64(3000))
			type row struct {
				ID int64
				V  string
			}
			got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3000 || got[0].ID != 101 || got[2999].ID != 3100 || got[2999].V != "row 3100" {
				t.Fatalf("got %d rows, first %v, last %v", len(got), got[0], got[len(got)-1])
			}
			if rows.CommandTag().String() != "SELECT 3000" {
				t.Errorf("tag = %q, want SELECT 3000", rows.CommandTag())
			}
		})
	}
}

func TestMultiStatementQueryAnswersEachStatementWithItsTag(t *testing.T) {
	db := openDB(t)
	c := connect(t, db, pgx.QueryExecModeSimpleProtocol)
	ctx := testContext(t)
	results, err := c.PgConn().Exec(ctx, `CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT);
		INSERT INTO s (v) VALUES ('a; not a separator'), ('b');
		SELECT v FROM s ORDER BY id;
		UPDATE s SET v = 'c' WHERE id = 2;
		DELETE FROM s WHERE id = 1;
		CREATE TRIGGER t AFTER INSERT ON s BEGIN UPDATE s SET v = v || '!' WHERE id = new.id; END;
		INSERT INTO s (v) VALUES ('d') RETURNING v;
		-- a comment after the last statement
		`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CREATE TABLE", "INSERT 0 2", "SELECT 2", "UPDATE 1", "DELETE 1", "CREATE TRIGGER", "INSERT 0 1"}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	for i, r := range results {
		if r.CommandTag.String() != want[i] {
			t.Errorf("result %d: tag %q, want %q", i, r.CommandTag, want[i])
		}
	}
	if got := string(results[2].Rows[0][0]); got != "a; not a separator" {
		t.Errorf("first row = %q", got)
	}
	if got := string(results[6].Rows[0][0]); got != "d" {
		t.Errorf("RETURNING = %q, want d (the trigger runs after)", got)
	}
	// A failure part way rolls back the whole query, as PostgreSQL's implicit transaction does.
	_, err = c.PgConn().Exec(ctx, `INSERT INTO s (v) VALUES ('e'); INSERT INTO s (id) VALUES (2)`).ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		t.Fatalf("err = %v, want 23505", err)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM s WHERE v = 'e'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the failed query = %d, %v; want 0", n, err)
	}
	// An empty query is answered with EmptyQueryResponse.
	if results, err := c.PgConn().Exec(ctx, ` ; -- nothing`).ReadAll(); err != nil || len(results) != 1 || results[0].CommandTag.String() != "" {
		t.Errorf("empty query: %v, %v", results, err)
	}
}

func TestEdgeValuesRoundTripInEveryQueryExecMode(t *testing.T) {
	type row struct {
		I  *int64
		F  *float64
		S  *string
		B  []byte
		OK *bool
	}
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	str := func(v string) *string { return &v }
	boo := func(v bool) *bool { return &v }
	cases := []row{
		{I: i64(math.MaxInt64), F: f64(1e300), S: str(""), B: []byte{}, OK: boo(false)},
		{I: i64(math.MinInt64), F: f64(-0.5), S: str(`back\slash 'quote' "dq" ; -- not a comment`), B: []byte(`\x41`), OK: boo(true)},
		{I: i64(0), F: f64(math.Inf(1)), S: str("日本語 ✓"), B: bytes.Repeat([]byte{0xff, 0}, 5000), OK: nil},
		{},
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			db := openDB(t)
			c := connect(t, db, mode)
			ctx := testContext(t)
			if _, err := c.Exec(ctx, `CREATE TABLE x (n INTEGER PRIMARY KEY, i INTEGER, f DOUBLE PRECISION, s VARCHAR(100), b BLOB, ok BOOL)`); err != nil {
				t.Fatal(err)
			}
			for n, r := range cases {
				if _, err := c.Exec(ctx, `INSERT INTO x VALUES ($1, $2, $3, $4, $5, $6)`, int64(n), r.I, r.F, r.S, r.B, r.OK); err != nil {
					t.Fatalf("row %d: %v", n, err)
				}
			}
			rows, _ := c.Query(ctx, `SELECT i, f, s, b, ok FROM x ORDER BY n`)
			got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, cases) {
				for n := range cases {
					if !reflect.DeepEqual(got[n], cases[n]) {
						t.Errorf("row %d: got %+v, want %+v", n, fmtRow(got[n].I, got[n].F, got[n].S, got[n].OK), fmtRow(cases[n].I, cases[n].F, cases[n].S, cases[n].OK))
						if !bytes.Equal(got[n].B, cases[n].B) {
							t.Errorf("row %d: bytes %q, want %q", n, trunc(got[n].B), trunc(cases[n].B))
						}
					}
				}
			}
		})
	}
}

func fmtRow(vals ...any) string {
	var b strings.Builder
	for _, v := range vals {
		rv := reflect.ValueOf(v)
		if rv.IsNil() {
			b.WriteString("nil ")
		} else {
			fmt.Fprintf(&b, "%v ", rv.Elem())
		}
	}
	return b.String()
}

func trunc(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}
