package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

func TestThePoolReadsWhatEachFunctionMayWrite(t *testing.T) {
	ctx := t.Context()
	direct, err := pgx.Connect(ctx, srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	sfx := fmt.Sprint(time.Now().UnixNano())
	n := func(s string) string { return s + "_" + sfx }
	if _, err := direct.Exec(ctx, fmt.Sprintf(`create table %[1]s (v int); create sequence %[2]s;
		create function %[3]s() returns int language sql as 'update %[1]s set v = v + 1 returning v';
		create function %[4]s() returns bigint language plpgsql as $$ begin perform %[3]s(); return nextval('%[2]s'); end $$;
		create function %[5]s() returns void language plpgsql as $$ begin execute 'select 1'; end $$;
		create function %[6]s() returns int language sql stable as 'select 1'`,
		n("w_t"), n("w_seq"), n("w_sql"), n("w_pl"), n("w_dyn"), n("w_stable"))); err != nil {
		t.Fatal(err)
	}
	defer direct.Exec(ctx, fmt.Sprintf("drop function %s(), %s(), %s(), %s(); drop table %s; drop sequence %s",
		n("w_pl"), n("w_sql"), n("w_dyn"), n("w_stable"), n("w_t"), n("w_seq")))

	p := newPool(t, Config{})
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Release(c)
	w := p.Related().Writers
	for fn, want := range map[string][]string{
		n("w_sql"): {n("w_t")},
		n("w_pl"):  {n("w_seq"), n("w_t")}, // its own nextval, and through the call of w_sql
		n("w_dyn"): {"*"},
	} {
		if got, ok := w[fn]; !ok || !slices.Equal(got, want) {
			t.Errorf("Writers[%s] = %q (listed: %v), want %q", fn, got, ok, want)
		}
	}
	if _, ok := w[n("w_stable")]; ok {
		t.Errorf("a STABLE function is listed as writing: %q", w[n("w_stable")])
	}
}

func TestFollowCallsCarriesWritesThroughChainsAndCycles(t *testing.T) {
	got := FollowCalls(map[string]classify.Body{
		"a": {Calls: []string{"b"}},
		"b": {Writes: []string{"t"}, Calls: []string{"c", "a"}},
		"c": {Writes: []string{"u"}},
		"d": {Calls: []string{"e"}},
		"e": {All: true},
		"f": {Calls: []string{"lower"}},
	})
	for fn, want := range map[string][]string{"a": {"t", "u"}, "b": {"t", "u"}, "c": {"u"}, "d": {"*"}, "e": {"*"}, "f": {}} {
		if !slices.Equal(got[fn], want) {
			t.Errorf("%s: %q, want %q", fn, got[fn], want)
		}
	}
}
