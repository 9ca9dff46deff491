package e2e

// any_role for MySQL (issue 21): users created at the MariaDB origin, none named in
// Slipstream's configuration, log in through Slipstream with their own passwords, through
// serve and through edge + pool, with go-sql-driver/mysql and the mariadb CLI. The
// configuration and the logs never hold a password of theirs, nor SHA1(password) (what the
// pool logs in with), nor the verifier.

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// myRole is a user the test creates at the origin, with a table only it may read.
type myRole struct {
	name, password, table string
}

// myRoleFixture is three users and the auth query that looks them up through a view made by
// root (SQL SECURITY DEFINER), which the app user (the origin URL's, who may not read
// mysql.user) may read: docs/roles.md's recipe.
type myRoleFixture struct {
	roles []myRole
	query string
}

// makeMySQLRoles creates the fixture at the package's MariaDB, dropped when the test ends.
func makeMySQLRoles(t *testing.T, ctx context.Context) *myRoleFixture {
	t.Helper()
	root := rootMySQL(t)
	sfx := suffix()
	view := mytest.AppDB + ".slipstream_users_" + sfx
	f := &myRoleFixture{query: "SELECT User, authentication_string FROM " + view + " WHERE User = ?"}
	stmts := []string{
		"CREATE SQL SECURITY DEFINER VIEW " + view + " AS SELECT User, authentication_string FROM mysql.user",
	}
	for _, who := range []string{"reader", "writer", "tenant"} {
		r := myRole{name: who + "_" + sfx, password: "pw-" + who + "-" + suffix() + suffix(), table: mytest.AppDB + ".own_" + who + "_" + sfx}
		f.roles = append(f.roles, r)
		stmts = append(stmts,
			"CREATE USER '"+r.name+"'@'%' IDENTIFIED BY '"+r.password+"'",
			"CREATE TABLE "+r.table+" (id int PRIMARY KEY, body text)",
			"INSERT INTO "+r.table+" VALUES (1, 'row of "+r.name+"')",
			"GRANT SELECT, UPDATE ON "+r.table+" TO '"+r.name+"'@'%'")
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drops := []string{"DROP VIEW IF EXISTS " + view}
		for _, r := range f.roles {
			drops = append(drops, "DROP USER IF EXISTS '"+r.name+"'@'%'", "DROP TABLE IF EXISTS "+r.table)
		}
		for _, s := range drops {
			if _, err := root.ExecContext(cctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	for _, s := range stmts {
		if _, err := root.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return f
}

// rootMySQL is a database/sql pool of MariaDB's root (over its unix socket).
func rootMySQL(t *testing.T) *sql.DB {
	t.Helper()
	c, err := mysql.ParseDSN(mariaDB(t).RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	return openMySQL(t, c)
}

// lines are the [[database]] settings of app with any_role, beyond name, kind and origin.
func (f *myRoleFixture) lines(extra ...string) []string {
	return append([]string{"any_role = true", fmt.Sprintf("auth_query = %q", f.query)}, extra...)
}

// checkNoSecrets fails the test when any user's password, SHA1(password) or verifier
// SHA1(SHA1(password)) is in text.
func (f *myRoleFixture) checkNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, r := range f.roles {
		stage1 := sha1.Sum([]byte(r.password))
		stage2 := sha1.Sum(stage1[:])
		if strings.Contains(text, r.password) {
			t.Errorf("%s holds the password of user %s", what, r.name)
		}
		if strings.Contains(lower, hex.EncodeToString(stage1[:])) || strings.Contains(lower, hex.EncodeToString(stage2[:])) {
			t.Errorf("%s holds SHA1(password) or the verifier of user %s", what, r.name)
		}
	}
}

// checkMySQLRoles logs each user in at addr (go-sql-driver/mysql, then the mariadb CLI): it
// is CURRENT_USER(), reads its own table (twice: a miss, then maybe the cache), may not read
// another's, and a wrong password or an unknown user gets MariaDB's own 1045, word for word.
func (f *myRoleFixture) checkMySQLRoles(t *testing.T, ctx context.Context, cfg *mysql.Config) {
	t.Helper()
	for i, r := range f.roles {
		c := cfg.Clone()
		c.User, c.Passwd = r.name, r.password
		db := openMySQL(t, c)
		var who string
		if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&who); err != nil || who != r.name+"@%" {
			t.Errorf("user %s: CURRENT_USER() = %q (%v)", r.name, who, err)
		}
		for range 2 {
			var body string
			if err := db.QueryRowContext(ctx, "SELECT body FROM "+r.table+" WHERE id = 1").Scan(&body); err != nil || body != "row of "+r.name {
				t.Errorf("user %s: its own table: %q (%v)", r.name, body, err)
			}
		}
		other := f.roles[(i+1)%len(f.roles)]
		_, err := db.ExecContext(ctx, "SELECT body FROM "+other.table)
		if mysqlErrno(err) != 1142 { // ER_TABLEACCESS_DENIED_ERROR
			t.Errorf("user %s reading %s's table: %v, want 1142", r.name, other.name, err)
		}
		f.checkCLI(t, ctx, c, r)
	}
	login := func(base *mysql.Config, user, password string) *mysql.MySQLError {
		c := base.Clone()
		c.User, c.Passwd = user, password
		err := openMySQL(t, c).PingContext(ctx)
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			t.Errorf("%s logging in with a wrong password: %v, want a MySQL error", user, err)
			return &mysql.MySQLError{}
		}
		return me
	}
	same := func(what string, through, direct *mysql.MySQLError) {
		if through.Number != 1045 || through.Number != direct.Number || through.SQLState != direct.SQLState || through.Message != direct.Message {
			t.Errorf("%s: through Slipstream %d %s %q, directly %d %s %q", what, through.Number, through.SQLState, through.Message,
				direct.Number, direct.SQLState, direct.Message)
		}
	}
	wrong := "not-" + f.roles[0].password
	same("a wrong password", login(cfg, f.roles[0].name, wrong), login(directMySQLConfig(t), f.roles[0].name, wrong))
	// MariaDB checks an unknown user as one of its accounts, picked by a hash of the name: 1045
	// for most, 1698 without "(using password: ...)" for an account of unix_socket (root).
	// Slipstream always answers 1045; the comparison is made for a name MariaDB answers so.
	for i := range 8 {
		user := "nobody_" + suffix()
		direct := login(directMySQLConfig(t), user, "whatever")
		if direct.Number == 1698 && i < 7 {
			continue
		}
		same("an unknown user", login(cfg, user, "whatever"), direct)
		break
	}
}

// checkCLI runs the mariadb CLI as r at c's address: CURRENT_USER() and its own table.
func (f *myRoleFixture) checkCLI(t *testing.T, ctx context.Context, c *mysql.Config, r myRole) {
	t.Helper()
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb CLI: %v (./scripts/test.sh installs mariadb-client)", err)
	}
	host, port, _ := strings.Cut(c.Addr, ":")
	cmd := exec.CommandContext(ctx, cli, "--no-defaults", "-h", host, "-P", port, "-u", r.name, "-D", c.DBName, "-N", "-B",
		"-e", "SELECT CURRENT_USER(); SELECT body FROM "+r.table)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+r.password)
	out, err := cmd.CombinedOutput()
	if want := r.name + "@%\nrow of " + r.name + "\n"; err != nil || string(out) != want {
		t.Errorf("mariadb CLI as %s: %q (%v), want %q", r.name, out, err, want)
	}
}

func TestMySQLAnyRoleLogsEveryUserInAsItselfThroughServe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	f := makeMySQLRoles(t, ctx)
	inst := startMySQLServeTOML(t, f.lines()...)
	f.checkMySQLRoles(t, ctx, inst.mysqlConfig(t))

	if refused, _ := metricValue(inst.metrics(t), "slipstream_auth_failures_total"); refused < 2 {
		t.Errorf("slipstream_auth_failures_total = %v, want 2 (a wrong password, an unknown user)", refused)
	}
	inst.Stop()
	f.checkNoSecrets(t, "serve's log", inst.stderr.String()+inst.stdout.String())
	f.checkNoSecrets(t, "the configuration", strings.Join(f.lines(), "\n"))
}

func TestMySQLAnyRoleLogsEveryUserInAsItselfThroughEdgeAndPool(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	f := makeMySQLRoles(t, ctx)
	db := fmt.Sprintf("[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n%s\n", mytest.AppDB,
		mariaDB(t).URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB), strings.Join(f.lines(), "\n"))
	edge, pool, configs := startEdgeAndPool(t, db)
	f.checkMySQLRoles(t, ctx, edge.mysqlConfigOf(t))

	for name, text := range configs {
		f.checkNoSecrets(t, "the configuration "+name, text)
	}
	edge.stop()
	pool.stop()
	f.checkNoSecrets(t, "the edge's log", edge.stderr.String()+edge.out.String())
	f.checkNoSecrets(t, "the pool's log", pool.stderr.String()+pool.out.String())
}

// TestMySQLTwoUsersAtOnceStayWithinEachUsersLimit runs transactions as two users at once through
// serve (4 clients each, max_connections = 2 per user) and counts each user's origin
// connections in MariaDB's process list all along: never over 2, while both run.
func TestMySQLTwoUsersAtOnceStayWithinEachUsersLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	f := makeMySQLRoles(t, ctx)
	inst := startMySQLServeTOML(t, f.lines("max_connections = 2", "max_db_connections = 4", `queue_timeout = "20s"`)...)
	root := rootMySQL(t)
	users := f.roles[:2]
	const clients, txs = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*clients)
	for _, r := range users {
		c := inst.mysqlConfig(t).Clone()
		c.User, c.Passwd = r.name, r.password
		db := openMySQL(t, c)
		db.SetMaxOpenConns(clients)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range txs {
					if err := userTx(ctx, db, r.table); err != nil {
						errs <- fmt.Errorf("%s: %w", r.name, err)
						return
					}
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak, samples := peakConnections(t, ctx, done, func(count func(who string, n int)) error {
		rows, err := root.QueryContext(ctx, "SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN (?, ?) GROUP BY USER",
			users[0].name, users[1].name)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var who string
			var n int
			if err := rows.Scan(&who, &n); err != nil {
				return err
			}
			count(who, n)
		}
		return rows.Err()
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, r := range users {
		if peak[r.name] > 2 || peak[r.name] == 0 {
			t.Errorf("user %s: at most %d origin connections in the process list, want 1 or 2 (its max_connections)", r.name, peak[r.name])
		}
		t.Logf("user %s: %d transactions, peak origin connections %d (%d samples of the process list)", r.name, clients*txs, peak[r.name], samples)
	}
}

// userTx is one transaction of a user on its own table: it holds its origin connection.
func userTx(ctx context.Context, db *sql.DB, table string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET body = body WHERE id = 1"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DO SLEEP(0.002)"); err != nil {
		return err
	}
	return tx.Commit()
}
