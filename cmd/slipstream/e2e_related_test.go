package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
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

	for _, c := range []struct {
		what, read, write string
	}{
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
	} {
		var before, again, after int
		// Twice, so that the cache keeps it (it keeps a read the second time it misses), and a
		// third time to see it served from there.
		for range 3 {
			if err := reader.QueryRow(ctx, c.read).Scan(&before); err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
		}
		if err := reader.QueryRow(ctx, c.read).Scan(&again); err != nil || again != before {
			t.Fatalf("%s: %d, %v before the write, want %d", c.what, again, err, before)
		}
		if _, err := writer.Exec(ctx, c.write); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if err := reader.QueryRow(ctx, c.read).Scan(&after); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if after == before {
			t.Errorf("cached read of %s: still %d, want the write's effect", c.what, after)
		}
	}
}
