package kv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/lib/pq"
)

// listen serves ns on a loopback TCP port, as ServeConn does for any listener, and returns the
// address.
func listen(t *testing.T, ns *Namespace) string {
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
				ns.ServeConn(ctx, c)
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

func TestLibPQOverTCPPutsGetsAndSeesSQLSTATEs(t *testing.T) {
	ns := openNS(t)
	db, err := sql.Open("postgres", "postgres://kv@"+listen(t, ns)+"/cache?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := testContext(t)
	value := []byte{0, '\\', 0xff}
	res, err := db.ExecContext(ctx, `INSERT INTO kv (key, value, metadata, expiration_ttl) VALUES ($1, $2, $3, $4)`, "k", value, `{"a":[1]}`, 60)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("rows affected = %d", n)
	}
	var (
		got  []byte
		meta string
		exp  int64
	)
	if err := db.QueryRowContext(ctx, `SELECT value, metadata, expiration FROM kv WHERE key = $1`, "k").Scan(&got, &meta, &exp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, value) || meta != `{"a":[1]}` || exp == 0 {
		t.Errorf("got %x %q %d", got, meta, exp)
	}
	_, err = db.ExecContext(ctx, `UPDATE kv SET value = $1`, value)
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "0A000" {
		t.Errorf("UPDATE: %v, want 0A000", err)
	}
}

func TestPsqlPutsListsAndIsToldWhatIsSupported(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed")
	}
	url := "postgres://kv@" + listen(t, openNS(t)) + "/cache?sslmode=disable"
	ctx := testContext(t)
	out, err := exec.CommandContext(ctx, psql, url, "-X", "-At", "-v", "ON_ERROR_STOP=1",
		"-c", `INSERT INTO kv (key, value) VALUES ('b', 'two'), ('a', '\x6f6e65')`,
		"-c", `SELECT key, value FROM kv WHERE key LIKE '%' ORDER BY key`).CombinedOutput()
	if err != nil || string(out) != "INSERT 0 2\na|\\x6f6e65\nb|\\x74776f\n" {
		t.Errorf("psql: %q, %v", out, err)
	}
	out, err = exec.CommandContext(ctx, psql, url, "-X", "-At", "-c", `SELECT now()`).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a KV namespace supports only") {
		t.Errorf("psql with an unsupported query: %q, %v", out, err)
	}
}
