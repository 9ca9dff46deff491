package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/link"
)

// newRoles returns the pools of app for any role, looked up by the superuser, and creates
// roles with the given names and passwords (dropped when the test ends).
func newRoles(t *testing.T, rc RolesConfig, cfg Config, roles map[string]string) *Roles {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.URL(pgtest.AdminUser, pgtest.AdminPassword, pgtest.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for name := range roles {
			admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
			admin.Exec(ctx, "DROP ROLE IF EXISTS "+name)
		}
		admin.Close(ctx)
	})
	for name, pw := range roles {
		if _, err := admin.Exec(ctx, "CREATE ROLE "+name+" LOGIN PASSWORD '"+pw+"'"); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Name = "app"
	cfg.Origin = srv.URL(pgtest.AdminUser, pgtest.AdminPassword, pgtest.AppDB)
	r, err := NewRoles(cfg, rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// clientKey is what a client's SCRAM proof reveals at the edge: password's ClientKey.
func clientKey(t *testing.T, verifier, password string) []byte {
	t.Helper()
	key, err := pgtest.SCRAMClientKey(verifier, password)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func roleName(t *testing.T, prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func TestRolesLogInAsTheRoleWithTheClientKeyOnly(t *testing.T) {
	ctx := context.Background()
	role := roleName(t, "pooled")
	r := newRoles(t, RolesConfig{}, Config{MaxConns: 2}, map[string]string{role: "role-secret"})

	v, err := r.Verifier(ctx, role, false)
	if err != nil || !strings.HasPrefix(v, "SCRAM-SHA-256$") {
		t.Fatalf("verifier of %s: %.14q (%v), want a SCRAM one", role, v, err)
	}
	if v, err := r.Verifier(ctx, roleName(t, "nobody"), false); err != nil || v != "" {
		t.Errorf("an unknown role's verifier: %q (%v), want none", v, err)
	}
	if v, err := r.Verifier(ctx, pgtest.MD5User, true); err != nil || !strings.HasPrefix(v, "md5") {
		t.Errorf("md5user's verifier: %.3q (%v), want an md5 one", v, err)
	}

	// No key yet, then a key that is not the role's: no login, and nothing sent to the origin.
	p, err := r.Pool(ctx, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(ctx); err == nil {
		t.Fatal("a role connection opened with no ClientKey")
	}
	wrong := make([]byte, sha256.Size)
	if _, err := r.Pool(ctx, role, wrong); err != nil {
		t.Fatal(err)
	}
	var oe *link.OriginError
	if _, err := p.Acquire(ctx); !errors.As(err, &oe) || oe.Refusal != link.OriginLoginRefused {
		t.Fatalf("with a wrong ClientKey: %v, want the login refused", err)
	}

	if _, err := r.Pool(ctx, role, clientKey(t, v, "role-secret")); err != nil {
		t.Fatal(err)
	}
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("with the role's ClientKey: %v", err)
	}
	p.Release(c)

	// The md5 role logs in with its verifier alone (pg_hba asks md5user for md5).
	mp, err := r.Pool(ctx, pgtest.MD5User, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err = mp.Acquire(ctx)
	if err != nil {
		t.Fatalf("md5user: %v", err)
	}
	mp.Release(c)
}

func TestRolesShareMaxDBConnsAndTakeIdleConnectionsFromOtherRoles(t *testing.T) {
	ctx := context.Background()
	a, b := roleName(t, "capa"), roleName(t, "capb")
	r := newRoles(t, RolesConfig{MaxDBConns: 2}, Config{MaxConns: 2, QueueTimeout: 300 * time.Millisecond},
		map[string]string{a: "a-secret", b: "b-secret"})
	pool := func(role, pw string) *Pool {
		v, err := r.Verifier(ctx, role, false)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.Pool(ctx, role, clientKey(t, v, pw))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa, pb := pool(a, "a-secret"), pool(b, "b-secret")

	var held []*Conn
	for range 2 {
		c, err := pa.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if _, err := pb.Acquire(ctx); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("role b while role a holds the database's 2: %v, want ErrQueueTimeout", err)
	}
	for _, c := range held {
		pa.Release(c)
	}
	// a's two are idle now: b's connections replace them.
	for range 2 {
		c, err := pb.Acquire(ctx)
		if err != nil {
			t.Fatalf("role b once role a's connections are idle: %v", err)
		}
		defer pb.Release(c)
	}
	if st := pa.Stats(); st.Idle+st.InUse != 0 {
		t.Errorf("role a still has %+v, want its idle connections closed for role b", st)
	}
}

// TestARolesPoolMadeWhileTheDatabaseIsPausedStartsPaused: PAUSE holds every role's sessions,
// those of a role whose first session comes during the pause too, until RESUME.
func TestARolesPoolMadeWhileTheDatabaseIsPausedStartsPaused(t *testing.T) {
	r := newRoles(t, RolesConfig{}, Config{MaxConns: 2}, nil)
	ctx := context.Background()
	before, err := r.Pool(ctx, roleName(t, "before"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Base().Pause(ctx); err != nil {
		t.Fatal(err)
	}
	during, err := r.Pool(ctx, roleName(t, "during"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.Paused() || !during.Paused() {
		t.Errorf("paused: the role's pool made before the pause %v (the console pauses it), made during it %v; want false, true",
			before.Paused(), during.Paused())
	}
	r.Base().Resume()
	during.Resume() // as the console's RESUME does for every pool of the database
	after, err := r.Pool(ctx, roleName(t, "after"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if during.Paused() || after.Paused() {
		t.Errorf("after RESUME: paused %v, %v", during.Paused(), after.Paused())
	}
}
