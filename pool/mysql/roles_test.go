package mysqlpool

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/link"
)

// rolesFixture makes n users at the origin (none known to the pool) and a view of their
// verifiers the app user may read, and returns their names, passwords and the auth query.
func rolesFixture(t *testing.T, n int) (names, passwords []string, query string) {
	t.Helper()
	root, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	sfx := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	view := mytest.AppDB + ".users_" + sfx
	stmts := []string{"CREATE SQL SECURITY DEFINER VIEW " + view + " AS SELECT User, authentication_string FROM mysql.user"}
	drops := []string{"DROP VIEW " + view}
	for i := range n {
		name, pw := "role"+strconv.Itoa(i)+"_"+sfx, "pw-"+strconv.Itoa(i)+"-"+sfx
		names, passwords = append(names, name), append(passwords, pw)
		stmts = append(stmts, "CREATE USER '"+name+"'@'%' IDENTIFIED BY '"+pw+"'",
			"GRANT SELECT ON "+mytest.AppDB+".* TO '"+name+"'@'%'")
		drops = append(drops, "DROP USER '"+name+"'@'%'")
	}
	for _, s := range stmts {
		if _, err := root.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range drops {
			root.Exec(s)
		}
	})
	return names, passwords, "SELECT User, authentication_string FROM " + view + " WHERE User = ?"
}

func newRoles(t *testing.T, rc RolesConfig, cfg Config) *Roles {
	t.Helper()
	cfg.Name = "app"
	cfg.Origin = srv.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
	r, err := NewRoles(cfg, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// openAs opens a session of user through the roles' origin, with SHA1(password) as the edge
// sends it.
func openAs(t *testing.T, r *Roles, user, password string) *testClient {
	t.Helper()
	hash := sha1.Sum([]byte(password))
	st, err := r.Origin().Open(context.Background(), map[string]string{"user": user, "database": "",
		"capabilities": strconv.FormatUint(uint64(clientCaps), 10), "collation": "45",
		link.ClientKeyParam: hex.EncodeToString(hash[:])})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Session)
	t.Cleanup(func() { s.Close() })
	return &testClient{t: t, s: s}
}

func TestRolePoolsLogInAsEachUserWithSHA1OfItsPassword(t *testing.T) {
	names, passwords, query := rolesFixture(t, 2)
	r := newRoles(t, RolesConfig{AuthQuery: query}, Config{MaxConns: 2})
	for i, name := range names {
		v, err := r.Verifier(context.Background(), name, false)
		stage1 := sha1.Sum([]byte(passwords[i]))
		stage2 := sha1.Sum(stage1[:])
		if err != nil || v != "*"+strings.ToUpper(hex.EncodeToString(stage2[:])) {
			t.Fatalf("Verifier(%s) = %q, %v", name, v, err)
		}
		if got := openAs(t, r, name, passwords[i]).value("SELECT CURRENT_USER()"); got != name+"@%" {
			t.Errorf("CURRENT_USER() = %q, want %s@%%", got, name)
		}
	}
	if v, err := r.Verifier(context.Background(), "nobody_"+names[0], false); err != nil || v != "" {
		t.Errorf("an unknown user's verifier: %q, %v", v, err)
	}
	// A hash that is not of the user's password (on a database whose pool has no connection
	// of the user's yet): the pool does not even try the origin.
	fresh := newRoles(t, RolesConfig{AuthQuery: query}, Config{MaxConns: 2})
	pk := openAs(t, fresh, names[0], "wrong").mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1")))
	if len(pk) != 1 || pk[0][0] != hdrERR || !strings.HasPrefix(errText(pk[0]), "1045 ") {
		t.Errorf("a wrong hash: %q, want 1045", errText(pk[0]))
	}
}

// TestMaxDBConnsIsSharedByTheRoles: with one connection for the whole database, a second role
// waits while the first holds it in a transaction (and times out), and gets it once the first
// role's connection is idle: the first role's idle connection is closed to make room.
func TestMaxDBConnsIsSharedByTheRoles(t *testing.T) {
	names, passwords, query := rolesFixture(t, 2)
	r := newRoles(t, RolesConfig{AuthQuery: query, MaxDBConns: 1}, Config{MaxConns: 1, QueueTimeout: 500 * time.Millisecond})
	a, b := openAs(t, r, names[0], passwords[0]), openAs(t, r, names[1], passwords[1])
	a.exec("BEGIN")
	pk, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT CURRENT_USER()")))
	if err == nil && (len(pk) == 0 || pk[0][0] != hdrERR) {
		t.Fatalf("the second role got a connection while the first held the only one: %q", pk)
	}
	a.exec("COMMIT")
	if got := openAs(t, r, names[1], passwords[1]).value("SELECT CURRENT_USER()"); got != names[1]+"@%" {
		t.Errorf("CURRENT_USER() = %q once the first role's connection is idle", got)
	}
	first, _ := r.Get(names[0])
	if st := first.Stats(); st.Idle+st.InUse != 0 {
		t.Errorf("the first role still holds %d connections", st.Idle+st.InUse)
	}
}
