package d1

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/lib/pq"
)

// listen serves db on a loopback TCP port until the test ends.
func listen(t *testing.T, db *DB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				db.ServeConn(ctx, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestLibPQOverTCPRoundTripsValues(t *testing.T) {
	db := openDB(t)
	host, port, _ := net.SplitHostPort(listen(t, db))
	sdb, err := sql.Open("postgres", fmt.Sprintf("host=%s port=%s user=d1 dbname=main sslmode=disable", host, port))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	ctx := testContext(t)
	if _, err := sdb.ExecContext(ctx, `CREATE TABLE l (id INTEGER PRIMARY KEY, s TEXT, f REAL, b BLOB, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	res, err := sdb.ExecContext(ctx, `INSERT INTO l (id, s, f, b, n) VALUES ($1, $2, $3, $4, $5)`, 7, "seven", 7.5, []byte("\x00seven"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("rows affected = %d, want 1", n)
	}
	var (
		id int64
		s  string
		f  float64
		b  []byte
		n  sql.NullInt64
	)
	if err := sdb.QueryRowContext(ctx, `SELECT id, s, f, b, n FROM l WHERE id = $1`, 7).Scan(&id, &s, &f, &b, &n); err != nil {
		t.Fatal(err)
	}
	if id != 7 || s != "seven" || f != 7.5 || !bytes.Equal(b, []byte("\x00seven")) || n.Valid {
		t.Errorf("got %d %q %v %q %v", id, s, f, b, n)
	}
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM l`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM l`).Scan(&count); err != nil || count != 1 {
		t.Errorf("count after rollback = %d, %v", count, err)
	}
}

func TestCancelRequestInterruptsARunningQuery(t *testing.T) {
	db := openDB(t)
	addr := listen(t, db)
	for _, transport := range []string{"tcp", "dial"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testContext(t)
			cfg, err := pgconn.ParseConfig("postgres://d1@" + addr + "/main?sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			if transport == "dial" {
				// pgconn sends CancelRequest through DialFunc too, so it reaches the DB in memory.
				cfg = connConfig(t, db, pgx.QueryExecModeExec).Config.Copy()
			}
			pc, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close(ctx)
			go func() {
				time.Sleep(200 * time.Millisecond) // let the query start; a cancel before it is a no-op
				pc.CancelRequest(ctx)
			}()
			start := time.Now()
			_, err = pc.Exec(ctx, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n`).ReadAll()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "57014" {
				t.Fatalf("err = %v, want 57014", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("cancel took %v", d)
			}
			// The session is still usable.
			if _, err := pc.Exec(ctx, `SELECT 1`).ReadAll(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConcurrentSessionsWriteWithoutLosingRows(t *testing.T) {
	db := openDB(t)
	setup := connect(t, db, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	if _, err := setup.Exec(ctx, `CREATE TABLE w (id INTEGER PRIMARY KEY, worker INTEGER, i INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.ConnectConfig(ctx, connConfig(t, db, modes[w%len(modes)]))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			for i := range each {
				if i%4 == 0 {
					err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, `INSERT INTO w (worker, i) VALUES ($1, $2)`, int64(w), int64(i))
						return err
					})
				} else {
					_, err = c.Exec(ctx, `INSERT INTO w (worker, i) VALUES ($1, $2)`, int64(w), int64(i))
				}
				if err != nil {
					errs <- err
					return
				}
				var n int64
				if err := c.QueryRow(ctx, `SELECT count(*) FROM w WHERE worker = $1`, int64(w)).Scan(&n); err != nil || n != int64(i+1) {
					errs <- fmt.Errorf("worker %d sees %d rows after %d inserts: %v", w, n, i+1, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int64
	if err := setup.QueryRow(ctx, `SELECT count(*) FROM w`).Scan(&n); err != nil || n != workers*each {
		t.Errorf("total rows = %d, %v; want %d", n, err, workers*each)
	}
}

func TestCloseEndsOpenSessions(t *testing.T) {
	db, err := Open(t.TempDir() + "/c.db")
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, db, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	if _, err := c.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SELECT 1`); err == nil {
		t.Error("query on a closed DB succeeded")
	}
	if _, err := db.Dial(ctx, "pipe", "d1"); err == nil {
		t.Error("Dial on a closed DB succeeded")
	}
}
