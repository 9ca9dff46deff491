package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pstest"
)

// apiDownTTL is the credential's life in the API-down test. It is no timing bet: every
// query is judged against the expiry the API gave the credential, and the test waits for
// events (the failing renewal in the metrics, Slipstream's refusal), never for a time. It is
// long only so that the third of it between the failed renewal and the expiry leaves room for
// queries that show the current credential still serving, however loaded the machine.
const apiDownTTL = 30 * time.Second

// psQuery is one query through slipstream and when it ran.
type psQuery struct {
	err        error
	start, end time.Time
}

// apiDown is "the API down for longer than a TTL": clients keep being served on the current
// credential until it expires, then get an error naming the database, and service resumes by
// itself once the API is back.
func (w *psWorld) apiDown(t *testing.T) {
	child, dsn := w.serve(t, fmt.Sprintf("[[database]]\norigin = \"planetscale://acme/ledger/main\"\ncredential_ttl = %q\ncatalog_refresh = \"1h\"\n", apiDownTTL))
	query := func() psQuery {
		q := psQuery{start: time.Now()}
		defer func() { q.end = time.Now() }()
		ctx := testContext(t, 10*time.Second)
		conn, err := pgx.Connect(ctx, dsn+"?sslmode=disable")
		if err != nil {
			q.err = err
			return q
		}
		defer conn.Close(ctx)
		var ts time.Time
		q.err = conn.QueryRow(ctx, "select now()").Scan(&ts) // STABLE: never cached
		q.end = time.Now()
		return q
	}
	if q := query(); q.err != nil {
		t.Fatal(q.err)
	}
	w.fake.SetDown(http.StatusServiceUnavailable)
	// The credential serving now is the last one minted: nothing is minted while the API is
	// down (serve may have rotated once already on a slow start).
	cur, ok := lastLive(w.fake, "ledger")
	if !ok {
		t.Fatal("no live credential of ledger")
	}
	expires := cur.Expires
	t.Logf("the API is down; the current credential %s expires in %v", cur.ID, time.Until(expires).Round(100*time.Millisecond))

	// judge fails a query that failed although it ended before the credential expired, and
	// counts those served before expiry.
	served := 0
	judge := func(when string, q psQuery) {
		t.Helper()
		switch {
		case q.err == nil && q.end.Before(expires):
			served++
		case q.err != nil && q.end.Before(expires):
			t.Errorf("%s, %v before the credential expired: %v, want the current credential to serve", when, expires.Sub(q.end).Round(time.Millisecond), q.err)
		}
	}
	judge("right after the API went down", query())

	// The renewal at two thirds of the TTL fails: a warning and the metric, then queries are
	// still served.
	failing := `slipstream_planetscale_renewal_failing{credential="primary",db="ledger"} 1`
	if err := eventually(testContext(t, 2*apiDownTTL), func() error {
		if body, _ := httpGet(t, psMetricsURL(t, child)); !strings.Contains(body, failing) {
			return errors.New("the metrics do not show the failing renewal")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(child.stderr.String(), `level=WARN msg="planetscale: minting the next credential failed; serving on the current one and retrying"`) {
		t.Errorf("no warning while the API was down:\n%s", child.stderr)
	}
	servedBefore := served
	judge("after the renewal failed", query())

	// At expiry the fake drops the user and ends its connections, as an expiring credential
	// would: a query in flight then fails with the origin's error. From then on new origin
	// connections fail with Slipstream's.
	const clear = "database ledger: the origin credential expired and no new one could be minted"
	var last psQuery
	err := eventually(testContext(t, 2*apiDownTTL), func() error {
		last = query()
		judge("while the API was down", last)
		if last.err == nil || !strings.Contains(last.err.Error(), clear) {
			return fmt.Errorf("not refused yet: %v", last.err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("at expiry the client got %v, want an error naming the database", err)
	}
	if last.start.Before(expires) {
		t.Errorf("refused %v before the credential expired: %v", expires.Sub(last.start).Round(time.Millisecond), last.err)
	}
	t.Logf("after the renewal failed, %d queries served before expiry; %v after expiry: %v",
		served-servedBefore, last.end.Sub(expires).Round(100*time.Millisecond), last.err)
	if served == servedBefore {
		t.Errorf("no query was served between the failed renewal and the expiry")
	}

	w.fake.SetDown(0)
	if err := eventually(testContext(t, 30*time.Second), func() error { return query().err }); err != nil {
		t.Errorf("service did not resume with the API back: %v", err)
	}
	if err := eventually(testContext(t, 30*time.Second), func() error {
		if body, _ := httpGet(t, psMetricsURL(t, child)); !strings.Contains(body, `slipstream_planetscale_renewal_failing{credential="primary",db="ledger"} 0`) {
			return errors.New("the metrics still show a failing renewal")
		}
		return nil
	}); err != nil {
		t.Errorf("after service resumed: %v", err)
	}
	w.checkShutdown(t, child, "ledger")
}

// lastLive is the credential of db minted last, if neither deleted nor expired.
func lastLive(f *pstest.Fake, db string) (pstest.Cred, bool) {
	creds := f.Creds()
	for i := len(creds) - 1; i >= 0; i-- {
		if c := creds[i]; c.DB == db {
			return c, !c.Deleted && !c.Expired
		}
	}
	return pstest.Cred{}, false
}
