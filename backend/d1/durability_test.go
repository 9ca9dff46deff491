package d1

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// childEnv names the database file the child writes to; it is set only in the child.
const childEnv = "D1_KILL9_CHILD_DB"

// TestAcknowledgedWritesSurviveKill9 runs a child process that inserts rows through pgx and
// prints "acked N" after each commit is acknowledged, kills it with SIGKILL mid-stream, and
// checks that every acknowledged row is in the reopened database.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "durable.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9ChildWritesUntilKilled$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 300
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "acked ")
		if !ok {
			continue
		}
		if acked, err = strconv.Atoi(n); err != nil {
			t.Fatal(err)
		}
		if acked >= killAfter {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if acked < killAfter {
		t.Fatalf("child stopped after %d acknowledged writes", acked)
	}

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := connect(t, db, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	var n, maxID int64
	if err := c.QueryRow(ctx, `SELECT count(*), coalesce(max(id), 0) FROM d`).Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	if maxID < int64(acked) || n != maxID {
		t.Fatalf("after kill -9: %d rows up to id %d; %d were acknowledged", n, maxID, acked)
	}
	var payloads int64
	if err := c.QueryRow(ctx, `SELECT count(*) FROM d WHERE id <= $1 AND payload = 'row ' || id`, int64(acked)).Scan(&payloads); err != nil || payloads != int64(acked) {
		t.Fatalf("%d intact acknowledged rows, %v; want %d", payloads, err, acked)
	}
}

// TestKill9ChildWritesUntilKilled is the child of TestAcknowledgedWritesSurviveKill9.
func TestKill9ChildWritesUntilKilled(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as the child of TestAcknowledgedWritesSurviveKill9")
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, db, pgx.QueryExecModeCacheStatement)
	ctx := context.Background()
	if _, err := c.Exec(ctx, `CREATE TABLE d (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); ; i++ {
		if i%3 == 0 {
			// Some writes go in explicit transactions.
			err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO d (id, payload) VALUES ($1, $2)`, i, fmt.Sprint("row ", i))
				return err
			})
		} else {
			_, err = c.Exec(ctx, `INSERT INTO d (id, payload) VALUES ($1, $2)`, i, fmt.Sprint("row ", i))
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", i) // unbuffered: the parent sees it at once
	}
}
