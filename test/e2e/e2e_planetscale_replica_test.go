package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pstest"
)

// replicaRYW is read_your_writes in the replica test: long, so that a read right after a write
// is judged by when it ran, not by how fast the machine is (see readAfterWrite).
const replicaRYW = 10 * time.Second

// startReplica starts a second real MariaDB that replicates database inventory from the
// test's MariaDB through its binlog (replicate_wild_do_table: the other databases' tables stay
// there), with table items made on both before replication starts.
func (w *psWorld) startReplica(t *testing.T) (*mytest.Server, *sql.DB) {
	t.Helper()
	ctx := testContext(t, 3*time.Minute)
	rep, err := mytest.StartTLS(ctx, &mytest.TLS{CertPEM: w.certPEM, KeyPEM: w.keyPEM})
	if err != nil {
		t.Fatalf("starting the replica: %v", err)
	}
	t.Cleanup(func() { rep.Stop() })
	repRoot, err := sql.Open("mysql", rep.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repRoot.Close() })
	primary, err := w.myRoot.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	schema := []string{"CREATE DATABASE inventory", "CREATE TABLE inventory.items (id int PRIMARY KEY, name varchar(40))"}
	for _, s := range append([]string{"SET sql_log_bin = 0"}, append(schema,
		"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw'", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")...) {
		if _, err := primary.ExecContext(ctx, s); err != nil {
			t.Fatalf("primary: %s: %v", s, err)
		}
	}
	var file string
	var pos int64
	var ignored [4]sql.RawBytes // Binlog_Do_DB, Binlog_Ignore_DB, ... whatever the version adds
	rows, err := primary.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	dest := []any{&file, &pos}
	for i := 2; i < len(cols); i++ {
		dest = append(dest, &ignored[i-2])
	}
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no binlog on the test MariaDB")
	}
	if err := rows.Scan(dest...); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if _, err := primary.ExecContext(ctx, "SET sql_log_bin = 1"); err != nil { // the connection goes back to myRoot's pool
		t.Fatal(err)
	}
	host, port := w.my.Host, w.my.Port
	for _, s := range append(schema,
		"SET GLOBAL server_id = 2",
		"SET GLOBAL replicate_wild_do_table = 'inventory.%'",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '%s', MASTER_PORT = %d, MASTER_USER = 'repl', MASTER_PASSWORD = 'repl-pw', MASTER_LOG_FILE = '%s', MASTER_LOG_POS = %d, MASTER_USE_GTID = no, MASTER_SSL = 1",
			host, port, file, pos),
		"START SLAVE") {
		if _, err := repRoot.ExecContext(ctx, s); err != nil {
			t.Fatalf("replica: %s: %v", s, err)
		}
	}
	return rep, repRoot
}

// replicaStatus is what SHOW SLAVE STATUS says of the replication threads and their errors.
func replicaStatus(repRoot *sql.DB) string {
	rows, err := repRoot.Query("SHOW SLAVE STATUS")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "no replication configured"
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rows.Scan(ptrs...)
	var b strings.Builder
	for i, c := range cols {
		switch c {
		case "Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error", "Master_Log_File", "Read_Master_Log_Pos",
			"Exec_Master_Log_Pos", "Replicate_Wild_Do_Table", "Master_Server_Id", "Replicate_Ignore_Server_Ids":
			fmt.Fprintf(&b, "%s=%s ", c, vals[i])
		}
	}
	var id string
	repRoot.QueryRow("SELECT @@server_id").Scan(&id)
	return b.String() + "server_id=" + id
}

// replicaWorld is the replica tests' setting: database inventory on the test's MariaDB and on
// a second one replicating it, known to the fake API with the replica's host for replica
// credentials; row 1 is on both, row 99 on the replica only, so that a read of row 99 says
// which server answered.
type replicaWorld struct {
	*psWorld
	rep     *mytest.Server
	repRoot *sql.DB
}

// replicaReads runs the replica_reads tests on one replica: under serve, under edge + pool, and
// across reloads.
func (w *psWorld) replicaReads(t *testing.T) {
	rep, repRoot := w.startReplica(t)
	ctx := testContext(t, 2*time.Minute)
	w.fake.AddDB("acme", &pstest.DB{Name: "inventory", Kind: "mysql", Branches: []string{"main"},
		Host: w.my.Addr(), Backend: pstest.MySQLUsers{Admin: w.myRoot, Database: "inventory"},
		Replica: &pstest.Replica{Host: rep.Addr(), Backend: pstest.MySQLUsers{Admin: repRoot, Database: "inventory"}}})

	if _, err := w.myRoot.ExecContext(ctx, "INSERT INTO inventory.items VALUES (1, 'on both')"); err != nil {
		t.Fatal(err)
	}
	if _, err := repRoot.ExecContext(ctx, "INSERT INTO inventory.items VALUES (99, 'on the replica only')"); err != nil {
		t.Fatal(err)
	}
	if err := eventually(testContext(t, 15*time.Second), func() error {
		var n int
		if err := repRoot.QueryRowContext(ctx, "SELECT count(*) FROM inventory.items WHERE id = 1").Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("row 1 not replicated yet (%v)", err)
		}
		return nil
	}); err != nil {
		t.Fatalf("replication: %v; the replica says: %s", err, replicaStatus(repRoot))
	}
	rw := &replicaWorld{psWorld: w, rep: rep, repRoot: repRoot}

	t.Run("serve", func(t *testing.T) {
		child, dsn := w.serve(t, fmt.Sprintf("[[database]]\norigin = \"planetscale://acme/inventory/main\"\nreplica_reads = true\nread_your_writes = %q\ncatalog_refresh = \"1h\"\n", replicaRYW))
		rw.checkRouting(t, dsn, child, psMetricsURL(t, child))
		w.checkShutdown(t, child, "inventory")
		rw.checkReplicaUsersGone(t)
	})
	t.Run("edge and pool", rw.edgeAndPool)
}

// replicaSession is one client session of the replica tests, reading row id's name with a
// query text of its own each time (no cache hit, at the edge or the pool).
type replicaSession struct {
	t    *testing.T
	ctx  context.Context
	conn *sql.Conn
}

// replicaQueries numbers the replica tests' reads, so that no two have the same text.
var replicaQueries atomic.Int64

const (
	// cacheableRead reads a row's name; %d are the row and the query's number, twice.
	cacheableRead = "SELECT name FROM items WHERE id = %d AND %d = %d"
	replicaOnly   = "on the replica only"
)

// read reads row id's name: "" when there is none, that is on the primary for row 99.
func (s replicaSession) read(sqlFormat string, id int) string {
	s.t.Helper()
	n := replicaQueries.Add(1)
	var name string
	err := s.conn.QueryRowContext(s.ctx, fmt.Sprintf(sqlFormat, id, n, n)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		s.t.Fatalf("reading row %d: %v", id, err)
	}
	return name
}

// session opens one client session on the slipstream at dsn.
func (rw *replicaWorld) session(t *testing.T, ctx context.Context, dsn string) replicaSession {
	t.Helper()
	db, _ := psMySQL(t, dsn, "inventory")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return replicaSession{t: t, ctx: ctx, conn: conn}
}

// checkRouting checks replica_reads through the slipstream at dsn (whose pool's metrics are at
// metricsURL; logs, for failures, in child): a row only the replica holds is read, reads the
// cache would not keep and reads in a transaction go to the primary, a session that wrote
// reads from the primary for read_your_writes, then from the replica again, and the write
// reaches the replica by replication.
func (rw *replicaWorld) checkRouting(t *testing.T, dsn string, child *psChild, metricsURL string) {
	ctx := testContext(t, 2*time.Minute)
	s := rw.session(t, ctx, dsn) // one client session throughout
	if got := s.read(cacheableRead, 99); got != replicaOnly {
		body, _ := httpGet(t, metricsURL)
		t.Fatalf("a cacheable read of row 99 got %q, want %q from the replica\n%s\n%s", got, replicaOnly, child.stderr, grepLines(body, "replica"))
	}
	if got := s.read("SELECT concat(name, ' ', rand() >= 0) FROM items WHERE id = %d AND %d = %d", 99); got != "" {
		t.Errorf("a read the cache would not keep (rand) got %q, want no row: it goes to the primary", got)
	}
	if _, err := s.conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if got := s.read(cacheableRead, 99); got != "" {
		t.Errorf("a read inside a transaction got %q, want no row: it goes to the primary", got)
	}
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}

	// A write, then reads: from the primary while within read_your_writes of the write (a read
	// that ended later than that proves nothing, and the write is tried again).
	proved := false
	written := ""
	for try := 0; try < 5 && !proved; try++ {
		start := time.Now()
		written = "written " + strconv.FormatInt(replicaQueries.Add(1), 10)
		if _, err := s.conn.ExecContext(ctx, "UPDATE items SET name = '"+written+"' WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		got := s.read(cacheableRead, 99)
		if time.Since(start) >= replicaRYW {
			t.Logf("write and read took %v, longer than read_your_writes: trying again", time.Since(start))
			continue
		}
		if got != "" {
			t.Fatalf("right after its write the session read %q from the replica, want the primary's (no row)", got)
		}
		if got := s.read(cacheableRead, 1); got != written {
			t.Errorf("right after its write the session read %q, want its own write %q", got, written)
		}
		proved = true
	}
	if !proved {
		t.Fatalf("no write and read within read_your_writes (%v) in 5 tries", replicaRYW)
	}
	if err := eventually(ctx, func() error {
		if got := s.read(cacheableRead, 99); got != replicaOnly {
			return fmt.Errorf("read %q", got)
		}
		return nil
	}); err != nil {
		t.Errorf("read_your_writes after the write, reads did not go back to the replica: %v", err)
	}
	// The write reached the replica by replication.
	if err := eventually(ctx, func() error {
		if got := s.read(cacheableRead, 1); got != written {
			return fmt.Errorf("read %q from the replica", got)
		}
		return nil
	}); err != nil {
		t.Errorf("the write never reached the replica: %v", err)
	}

	body, _ := httpGet(t, metricsURL)
	for _, to := range []string{"replica", "primary"} {
		if !regexp.MustCompile(`(?m)^slipstream_replica_reads_total\{db="inventory",to="` + to + `"\} [1-9]`).MatchString(body) {
			t.Errorf("the metrics count no read of inventory sent to the %s", to)
		}
	}
	replicas := 0
	for _, c := range rw.fake.Creds() {
		if c.DB == "inventory" && c.Replica {
			replicas++
			if c.Host != rw.rep.Addr() || c.Role != "reader" {
				t.Errorf("replica credential %s: host %s role %s, want the replica's host and reader", c.ID, c.Host, c.Role)
			}
		}
	}
	if replicas == 0 {
		t.Error("no replica credential was minted")
	}
	s.conn.Close()
}

// checkReplicaUsersGone checks that no minted user is left on the replica.
func (rw *replicaWorld) checkReplicaUsersGone(t *testing.T) {
	t.Helper()
	var users int
	rw.repRoot.QueryRowContext(context.Background(), "SELECT count(*) FROM mysql.user WHERE user LIKE 'ps%'").Scan(&users)
	if users != 0 {
		t.Errorf("after shutdown %d minted users remain on the replica", users)
	}
}
