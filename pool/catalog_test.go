package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// The pool reads its origin's catalog again every CatalogRefresh, and tells OnCatalogChange
// only when it differs: here, a view made straight at the origin.
func TestThePoolReadsItsCatalogAgainAndTellsOnlyOfChanges(t *testing.T) {
	p := newPool(t, Config{CatalogRefresh: 100 * time.Millisecond})
	told := make(chan struct{}, 100)
	p.OnCatalogChange(func() { told <- struct{}{} })
	ctx := t.Context()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Release(c)
	time.Sleep(500 * time.Millisecond)
	if len(told) > 0 {
		t.Fatalf("told of %d changes, though the catalog did not change", len(told))
	}

	direct, err := pgx.Connect(ctx, srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	table, view := fmt.Sprintf("watch_t_%d", time.Now().UnixNano()), fmt.Sprintf("watch_v_%d", time.Now().UnixNano())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int); create view %s as select id from %[1]s", table, view)); err != nil {
		t.Fatal(err)
	}
	defer direct.Exec(ctx, fmt.Sprintf("drop view %s; drop table %s", view, table))
	select {
	case <-told:
	case <-time.After(5 * time.Second):
		t.Fatal("not told of the view made at the origin")
	}
	if !slices.ContainsFunc(p.Related().Groups, func(g []string) bool { return slices.Equal(g, []string{table, view}) }) {
		t.Errorf("related groups %v, want [%s %s] among them", p.Related().Groups, table, view)
	}
}
