package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestAWriteInvalidatesCachedReadsOfEveryRelationItChanges: a write changes more than the
// table it names when the schema says so. Through Slipstream, with the schema made through
// Slipstream too (so that the pool re-reads its catalog), a cached read of a view is stale
// after a write to its table, and of the table after a write through the view; of a partition
// after a write to the partitioned table; of a child table after a cascading delete of its
// parent; of any table after a write to a table whose trigger writes it.
func TestAWriteInvalidatesCachedReadsOfEveryRelationItChanges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	s := suffix()
	name := func(n string) string { return n + "_" + s }
	writer := connect(t, ctx, inst.plainURL())
	reader := connect(t, ctx, inst.plainURL())
	schema := strings.NewReplacer("{base}", name("base"), "{view}", name("view"), "{parted}", name("parted"),
		"{part}", name("part"), "{parent}", name("parent"), "{child}", name("child"), "{audited}", name("audited"),
		"{audit}", name("audit"), "{fn}", name("fn"), "{trg}", name("trg")).Replace(`
create table {base} (id int primary key, v int);
insert into {base} values (1, 0);
create view {view} as select id, v from {base};
create table {parted} (id int, v int) partition by range (id);
create table {part} partition of {parted} for values from (0) to (100);
insert into {parted} values (1, 0);
create table {parent} (id int primary key);
create table {child} (id int primary key, parent int references {parent} (id) on delete cascade);
insert into {parent} values (1), (2);
insert into {child} values (10, 1), (20, 2);
create table {audited} (id int);
create table {audit} (n int);
insert into {audit} values (0);
create function {fn}() returns trigger language plpgsql as $$ begin update {audit} set n = n + 1; return new; end $$;
create trigger {trg} after insert on {audited} for each row execute function {fn}();`)
	if _, err := writer.Exec(ctx, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := connect(t, context.Background(), directURL())
		for _, n := range []string{"view", "base", "parted", "child", "parent", "audited", "audit"} {
			kind := "table"
			if n == "view" {
				kind = "view"
			}
			c.Exec(context.Background(), fmt.Sprintf("drop %s if exists %s cascade", kind, name(n)))
		}
		c.Exec(context.Background(), fmt.Sprintf("drop function if exists %s", name("fn")))
	})

	readsSeeRelatedWrites(t, pgReadWrite(ctx, reader, writer), []relatedWrite{
		{"a view, after a write to its table", "select v from " + name("view") + " where id = 1",
			"update " + name("base") + " set v = v + 1 where id = 1"},
		{"a table, after a write through its view", "select v from " + name("base") + " where id = 1",
			"update " + name("view") + " set v = v + 1 where id = 1"},
		{"a partition, after a write to the partitioned table", "select count(*) from " + name("part"),
			"insert into " + name("parted") + " values (2, 0)"},
		{"a partitioned table, after a write to a partition", "select count(*) from " + name("parted"),
			"insert into " + name("part") + " values (3, 0)"},
		{"a child table, after a cascading delete of its parent", "select count(*) from " + name("child"),
			"delete from " + name("parent") + " where id = 1"},
		{"a table a trigger writes, after a write that fires it", "select n from " + name("audit"),
			"insert into " + name("audited") + " values (1)"},
	})
}

// relatedWrite is a read of one relation and a write, of another, that changes its answer.
type relatedWrite struct{ what, read, write string }

// readWrite runs a read of one integer, or a write, through Slipstream.
type readWrite struct {
	read  func(q string) (int, error)
	write func(q string) error
}

// pgReadWrite reads on reader and writes on writer.
func pgReadWrite(ctx context.Context, reader, writer *pgx.Conn) readWrite {
	return readWrite{
		read:  func(q string) (n int, err error) { err = reader.QueryRow(ctx, q).Scan(&n); return n, err },
		write: func(q string) error { _, err := writer.Exec(ctx, q); return err },
	}
}

// readsSeeRelatedWrites reads each case's relation until the cache serves it, writes the
// other, and reads again: the answer must show the write.
func readsSeeRelatedWrites(t *testing.T, rw readWrite, cases []relatedWrite) {
	t.Helper()
	for _, c := range cases {
		var before, again, after int
		var err error
		// Twice, so that the cache keeps it (it keeps a read the second time it misses), and a
		// third time to see it served from there.
		for range 3 {
			if before, err = rw.read(c.read); err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
		}
		if again, err = rw.read(c.read); err != nil || again != before {
			t.Fatalf("%s: %d, %v before the write, want %d", c.what, again, err, before)
		}
		if err := rw.write(c.write); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if after, err = rw.read(c.read); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if after == before {
			t.Errorf("cached read of %s: still %d, want the write's effect", c.what, after)
		}
	}
}

// TestAViewMadeThroughOneEdgeIsKnownToTheOthersAtOnce: edges behind a QUIC tunnel keep the
// origin's profile (function volatilities, related relations) and refresh it every few
// seconds; a statement that changes the catalog is answered only once every edge has the new
// one, so another edge's cached read of a view made a moment ago is invalidated by a write to
// the view's table.
func TestAViewMadeThroughOneEdgeIsKnownToTheOthersAtOnce(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	var conns [2]*pgx.Conn
	for i := range conns {
		edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
		conns[i] = connect(t, ctx, edge.appURL(t))
	}
	table, view := "rel_t_"+suffix(), "rel_v_"+suffix()
	t.Cleanup(func() {
		c := connect(t, context.Background(), directURL())
		c.Exec(context.Background(), fmt.Sprintf("drop view if exists %s; drop table if exists %s", view, table))
	})
	// Edge 1 has its profile (fetched when it started) before edge 0 makes the view.
	if _, err := conns[0].Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Exec(ctx, fmt.Sprintf("create view %s as select id, v from %s", view, table)); err != nil {
		t.Fatal(err)
	}
	readsSeeRelatedWrites(t, pgReadWrite(ctx, conns[1], conns[1]), []relatedWrite{{"edge 1's view made through edge 0, after a write to its table",
		"select v from " + view + " where id = 1", "update " + table + " set v = 1 where id = 1"}})
}
