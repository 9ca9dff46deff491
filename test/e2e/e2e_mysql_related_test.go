package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

// TestAMySQLWriteInvalidatesCachedReadsOfEveryRelationItChanges is
// TestAWriteInvalidatesCachedReadsOfEveryRelationItChanges for MariaDB: with the schema made
// through Slipstream (so that the pool re-reads information_schema), a cached read of a view
// is stale after a write to its table, of a view over that view too, of the table after a
// write through the view; of a child table after a cascading delete of its parent; of a table
// a trigger writes after a write that fires it.
func TestAMySQLWriteInvalidatesCachedReadsOfEveryRelationItChanges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startMySQLServe(t)
	s := suffix()
	name := func(n string) string { return n + "_" + s }
	writer, reader := openMySQL(t, inst.mysqlConfig(t)), openMySQL(t, inst.mysqlConfig(t))
	schema := strings.NewReplacer("{base}", name("base"), "{view}", name("view"), "{view2}", name("view2"),
		"{parent}", name("parent"), "{child}", name("child"), "{audited}", name("audited"),
		"{audit}", name("audit"), "{trg}", name("trg")).Replace(`
create table {base} (id int primary key, v int);
insert into {base} values (1, 0);
create view {view} as select id, v from {base};
create view {view2} as select id, v from {view};
create table {parent} (id int primary key) engine = InnoDB;
create table {child} (id int primary key, parent int, foreign key (parent) references {parent} (id) on delete cascade) engine = InnoDB;
insert into {parent} values (1), (2);
insert into {child} values (10, 1), (20, 2);
create table {audited} (id int);
create table {audit} (n int);
insert into {audit} values (0);
create trigger {trg} after insert on {audited} for each row update {audit} set n = n + 1`)
	for _, q := range strings.Split(schema, ";") {
		if _, err := writer.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		direct := openMySQL(t, directMySQLConfig(t))
		direct.Exec("drop view if exists " + name("view2") + ", " + name("view"))
		direct.Exec("drop table if exists " + name("base") + ", " + name("child") + ", " + name("parent") + ", " +
			name("audited") + ", " + name("audit"))
	})

	readsSeeRelatedWrites(t, mysqlReadWrite(ctx, reader, writer), []relatedWrite{
		{"a view, after a write to its table", "select v from " + name("view") + " where id = 1",
			"update " + name("base") + " set v = v + 1 where id = 1"},
		{"a view over a view, after a write to its table", "select v from " + name("view2") + " where id = 1",
			"update " + name("base") + " set v = v + 1 where id = 1"},
		{"a table, after a write through its view", "select v from " + name("base") + " where id = 1",
			"update " + name("view") + " set v = v + 1 where id = 1"},
		{"a child table, after a cascading delete of its parent", "select count(*) from " + name("child"),
			"delete from " + name("parent") + " where id = 1"},
		{"a table a trigger writes, after a write that fires it", "select n from " + name("audit"),
			"insert into " + name("audited") + " values (1)"},
	})
}

// mysqlReadWrite reads on reader and writes on writer.
func mysqlReadWrite(ctx context.Context, reader, writer *sql.DB) readWrite {
	return readWrite{
		read:  func(q string) (n int, err error) { err = reader.QueryRowContext(ctx, q).Scan(&n); return n, err },
		write: func(q string) error { _, err := writer.ExecContext(ctx, q); return err },
	}
}

// TestAMySQLViewMadeThroughOneEdgeIsKnownToTheOthersAtOnce is
// TestAViewMadeThroughOneEdgeIsKnownToTheOthersAtOnce for MariaDB: a statement that makes a
// view is answered only once every edge behind the QUIC tunnel has the profile that relates it
// to its table, so another edge's cached read of the view is invalidated by a write to the table.
func TestAMySQLViewMadeThroughOneEdgeIsKnownToTheOthersAtOnce(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	pool, certs, origin := startMySQLPool(t)
	var conns [2]*sql.DB
	for i := range conns {
		edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(),
			"--origin", origin)
		conns[i] = openMySQL(t, edge.mysqlConfigOf(t))
	}
	table, view := "rel_t_"+suffix(), "rel_v_"+suffix()
	t.Cleanup(func() {
		direct := openMySQL(t, directMySQLConfig(t))
		direct.Exec("drop view if exists " + view)
		direct.Exec("drop table if exists " + table)
	})
	// Edge 1 has its profile (fetched when its client logged in) before edge 0 makes the view.
	if err := conns[1].PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"create table " + table + " (id int primary key, v int)",
		"insert into " + table + " values (1, 0)", "create view " + view + " as select id, v from " + table} {
		if _, err := conns[0].ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	readsSeeRelatedWrites(t, mysqlReadWrite(ctx, conns[1], conns[1]), []relatedWrite{{"edge 1's view made through edge 0, after a write to its table",
		"select v from " + view + " where id = 1", "update " + table + " set v = 1 where id = 1"}})
}
