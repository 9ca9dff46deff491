package e2e

import (
	"strings"
	"testing"
	"time"
)

// A query the TiDB parser panics on (a decimal literal longer than its value driver holds;
// found by FuzzClassifyMySQL) is an unparsed query to the cache, sent on to the origin: the
// session gets the origin's answer and goes on. It used to end the session.
func TestAQueryTheMySQLParserChokesOnReachesTheOrigin(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServe(t)
	db := openMySQL(t, inst.mysqlConfig(t))
	db.SetMaxOpenConns(1)
	var v string
	if err := db.QueryRowContext(ctx, "SELECT ."+strings.Repeat("0", 130)+" = 0").Scan(&v); err != nil || v != "1" {
		t.Fatalf("the long decimal: %q, %v; want the origin's 1", v, err)
	}
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the same session after it: %d, %v", one, err)
	}
}
