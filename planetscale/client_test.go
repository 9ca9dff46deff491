package planetscale

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pstest"
)

const (
	tokenID     = "tok-id"
	tokenSecret = "pscale_tkn_s3cret"
)

// newFake is a fake API with organization acme: databases shop (mysql, branches main and dev),
// ledger (postgresql, main) and three more, so that listing them takes three pages.
func newFake(t *testing.T) (*pstest.Fake, *Client) {
	t.Helper()
	f := pstest.New(tokenID, tokenSecret)
	t.Cleanup(f.Close)
	f.AddDB("acme", &pstest.DB{Name: "shop", Kind: "mysql", Branches: []string{"main", "dev", "feature"}, Host: "127.0.0.1:1"})
	f.AddDB("acme", &pstest.DB{Name: "ledger", Kind: "postgresql", Branches: []string{"main"}, Host: "127.0.0.1:2"})
	for _, n := range []string{"a", "b", "c"} {
		f.AddDB("acme", &pstest.DB{Name: n, Kind: "mysql", Branches: []string{"main"}})
	}
	c := &Client{BaseURL: f.URL, Token: Token{ID: tokenID, Secret: tokenSecret}, MaxWait: 50 * time.Millisecond}
	return f, c
}

func TestClientListsEveryPage(t *testing.T) {
	f, c := newFake(t)
	dbs, err := c.Databases(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dbs {
		got = append(got, d.Name+":"+d.Kind)
	}
	if strings.Join(got, ",") != "shop:mysql,ledger:postgresql,a:mysql,b:mysql,c:mysql" {
		t.Errorf("databases %v", got)
	}
	if n := len(f.Requests()); n != 3 {
		t.Errorf("%d requests for 5 databases at 2 a page, want 3: %v", n, f.Requests())
	}
	branches, err := c.Branches(context.Background(), "acme", "shop")
	if err != nil || len(branches) != 3 || branches[2].Name != "feature" {
		t.Errorf("branches %v, %v", branches, err)
	}
}

func TestClientRetries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		failures   int
		wantErr    bool
	}{
		{"a 429 with Retry-After is retried after the wait", http.StatusTooManyRequests, "0", 1, false},
		{"a 503 is retried with backoff", http.StatusServiceUnavailable, "", 2, false},
		{"a 500 that persists fails after the attempts", http.StatusInternalServerError, "", 4, true},
		{"a 404 is not retried", http.StatusNotFound, "", 1, true},
		{"a 401 is not retried", http.StatusUnauthorized, "", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFake(t)
			for range tc.failures {
				f.FailNext(tc.status, tc.retryAfter)
			}
			_, err := c.Branches(context.Background(), "acme", "ledger")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			wantRequests := tc.failures + 1
			if tc.wantErr {
				wantRequests = tc.failures
			}
			if n := len(f.Requests()); n != wantRequests {
				t.Errorf("%d requests, want %d", n, wantRequests)
			}
			if err != nil && !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("the error %q does not carry the API's message", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "2": 2 * time.Second, "soon": 0, "0": time.Millisecond} {
		if got := retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestResolveNamesWhatIsWrong(t *testing.T) {
	f, c := newFake(t)
	_ = f
	bad := &Client{BaseURL: f.URL, Token: Token{ID: tokenID, Secret: "wrong-secret"}}
	for _, tc := range []struct {
		name   string
		c      *Client
		target Target
		want   string // in the error; "" for none
		kind   string
	}{
		{"a mysql branch resolves with its kind", c, Target{Org: "acme", Database: "shop", Branch: "dev"}, "", KindMySQL},
		{"a postgres branch resolves with its kind", c, Target{Org: "acme", Database: "ledger", Branch: "main"}, "", KindPostgres},
		{"a refused token says so", bad, Target{Org: "acme", Database: "shop", Branch: "main"}, `service token was refused listing the databases of organization "acme": planetscale API: GET /organizations/acme/databases: 401 (unauthorized: The access token is invalid)`, ""},
		{"an unknown organization is named", c, Target{Org: "nope", Database: "shop", Branch: "main"}, `organization "nope" not found`, ""},
		{"an unknown database is named", c, Target{Org: "acme", Database: "nope", Branch: "main"}, `organization "acme" has no database "nope" (it has 5: shop, ledger, a, b, c)`, ""},
		{"an unknown branch is named", c, Target{Org: "acme", Database: "shop", Branch: "nope"}, `database acme/shop has no branch "nope" (it has main, dev, feature)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Resolve(context.Background(), tc.target)
			if tc.want == "" {
				if err != nil || got.Kind != tc.kind {
					t.Fatalf("Resolve = %+v, %v; want kind %s", got, err, tc.kind)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

func TestMintRenewDelete(t *testing.T) {
	for _, target := range []Target{{Org: "acme", Database: "shop", Branch: "main", Kind: KindMySQL}, {Org: "acme", Database: "ledger", Branch: "main", Kind: KindPostgres}} {
		t.Run(target.Kind, func(t *testing.T) {
			f, c := newFake(t)
			ctx := context.Background()
			cred, err := c.Mint(ctx, target, MintRequest{Name: "t", Role: RoleReadWriter, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if cred.Password == "" || cred.Username == "" || cred.Host == "" || cred.Database != target.Database || time.Until(cred.Expires) < 59*time.Minute {
				t.Errorf("minted %+v", cred)
			}
			if strings.Contains(cred.String(), cred.Password) {
				t.Errorf("String shows the password: %s", cred)
			}
			exp, err := c.Renew(ctx, target, cred.ID)
			if err != nil || exp.Before(cred.Expires) {
				t.Errorf("Renew = %v, %v", exp, err)
			}
			if err := c.Delete(ctx, target, cred.ID); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, target, cred.ID); err != nil {
				t.Errorf("deleting it again: %v, want nil (404 is deleted)", err)
			}
			if live := f.Live(); len(live) != 0 {
				t.Errorf("live credentials after delete: %v", live)
			}
			want := "POST /v1/organizations/acme/databases/" + target.Database + "/branches/main/" + map[string]string{KindMySQL: "passwords", KindPostgres: "roles"}[target.Kind]
			if r := f.Requests(); r[0] != want {
				t.Errorf("first request %q, want %q", r[0], want)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	for in, ok := range map[string]bool{"id:secret\n": true, " id:secret ": true, "id": false, ":secret": false, "id:": false, "id:se cret": false} {
		tok, err := ParseToken(in)
		if (err == nil) != ok {
			t.Errorf("ParseToken(%q) = %v, %v", in, tok, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	if s := (Token{ID: "i", Secret: "s3cret"}).String(); strings.Contains(s, "s3cret") {
		t.Errorf("Token.String shows the secret: %s", s)
	}
}
