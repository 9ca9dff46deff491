package e2e

// PlanetScale end to end: a fake PlanetScale API (internal/pstest) in front of a real
// PostgreSQL 15 and a real MariaDB 10.11, each started with TLS under a test CA, and
// `slipstream serve` run as a child process (the test binary, runMainEnv) whose SSL_CERT_FILE
// is that CA: Go's system roots then trust exactly the test origins, as they would trust
// PlanetScale's. Minting a credential creates a real database user (REQUIRE SSL on MariaDB);
// deleting it or its expiry drops the user and kills its connections, so a credential deleted
// too early, or a connection left on it, shows as a client error.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/internal/pstest"
)

const (
	psTokenID = "svc-token-id"
	psSecret  = "pscale_tkn_e2e-s3cret"
	// psLongEnv runs the load tests for 60 s with a credential rotated every 10 s, as the
	// issue asks to show once by hand; by default they run 15 s with a rotation every 3 s.
	psLongEnv = "SLIPSTREAM_TEST_PLANETSCALE_LONG"
)

// psWorld is the fake PlanetScale and the real databases behind it.
type psWorld struct {
	caFile string
	// certPEM and keyPEM are the origins' certificate and key, for another server
	certPEM, keyPEM []byte
	pg              *pgtest.Server
	my              *mytest.Server
	myRoot          *sql.DB
	fake            *pstest.Fake
}

// startPSWorld starts the TLS origins and the fake API: organization acme with database
// ledger (postgresql, on the PostgreSQL server, whose database ledger holds pgbench's tables)
// and shop (mysql, on MariaDB, whose database shop holds sysbench's), each with branches main
// and dev.
func startPSWorld(t *testing.T) *psWorld {
	t.Helper()
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := testCertificates(t)
	w := &psWorld{caFile: filepath.Join(dir, "ca.pem"), certPEM: certPEM, keyPEM: keyPEM}
	if err := os.WriteFile(w.caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 3*time.Minute)
	var wg sync.WaitGroup
	var pgErr, myErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.pg, pgErr = pgtest.StartTLS(ctx, &pgtest.TLS{CertPEM: certPEM, KeyPEM: keyPEM})
	}()
	go func() {
		defer wg.Done()
		w.my, myErr = mytest.StartTLS(ctx, &mytest.TLS{CertPEM: certPEM, KeyPEM: keyPEM})
	}()
	wg.Wait()
	if w.pg != nil {
		t.Cleanup(func() { w.pg.Stop() })
	}
	if w.my != nil {
		t.Cleanup(func() { w.my.Stop() })
	}
	if pgErr != nil || myErr != nil {
		t.Fatalf("starting the TLS origins: %v %v", pgErr, myErr)
	}
	admin, err := pgx.Connect(ctx, w.pg.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE ledger"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "1", w.pg.URL(pgtest.AdminUser, pgtest.AdminPassword, "ledger")).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if w.myRoot, err = sql.Open("mysql", w.my.RootDSN()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.myRoot.Close() })
	if _, err := w.myRoot.ExecContext(ctx, "CREATE DATABASE shop"); err != nil {
		t.Fatal(err)
	}
	w.fake = pstest.New(psTokenID, psSecret)
	t.Cleanup(w.fake.Close)
	w.fake.AddDB("acme", &pstest.DB{Name: "ledger", Kind: "postgresql", Branches: []string{"main", "dev"},
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(w.pg.Port)), Backend: pstest.PostgresRoles{AdminURL: w.pg.AdminURL()}})
	w.fake.AddDB("acme", &pstest.DB{Name: "shop", Kind: "mysql", Branches: []string{"main", "dev"},
		Host: w.my.Addr(), Backend: pstest.MySQLUsers{Admin: w.myRoot, Database: "shop"}})
	w.fake.AddOrg("empty")
	return w
}

// testCertificates returns a CA and a server certificate it signed for 127.0.0.1 and
// localhost, with the server's key, all PEM.
func testCertificates(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipstream test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// psChild is the slipstream binary (this test binary) run as a child process.
type psChild struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// env is the child's environment: the test CA as the system roots, the fake API, the token.
func (w *psWorld) env(token string) []string {
	return append(os.Environ(), runMainEnv+"=1", "SSL_CERT_FILE="+w.caFile, "SSL_CERT_DIR="+filepath.Dir(w.caFile),
		"PLANETSCALE_API_URL"+"="+w.fake.URL, "PLANETSCALE_SERVICE_TOKEN_ID"+"="+psTokenID, "PLANETSCALE_SERVICE_TOKEN"+"="+token)
}

// start runs the slipstream binary with args.
func (w *psWorld) start(t *testing.T, token string, args ...string) *psChild {
	t.Helper()
	c := &psChild{cmd: exec.Command(os.Args[0], args...), stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan struct{})}
	c.cmd.Env = w.env(token)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		<-c.done
	})
	return c
}

// wait waits for the child to exit and returns its code.
func (c *psChild) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(within):
		t.Fatalf("slipstream did not exit within %v; stderr:\n%s", within, c.stderr)
		return -1
	}
}

// stop sends SIGTERM and returns the exit code.
func (c *psChild) stop(t *testing.T) int {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	return c.wait(t, 30*time.Second)
}

// serve starts `slipstream serve` with a config file of one database and returns the
// connection string it printed for it.
func (w *psWorld) serve(t *testing.T, toml string) (*psChild, string) {
	t.Helper()
	path := writeTOML(t, toml)
	c := w.start(t, psSecret, "serve", "--config", path, "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	ctx := testContext(t, 60*time.Second)
	var url string
	err := eventually(ctx, func() error {
		select {
		case <-c.done:
			return fmt.Errorf("serve exited %d:\n%s", c.code, c.stderr)
		default:
		}
		m := databaseLine.FindStringSubmatch(c.stdout.String())
		if m == nil {
			return fmt.Errorf("no database line yet")
		}
		url = m[2]
		return nil
	})
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, c.stderr)
	}
	return c, url
}

func psLong() bool { return os.Getenv(psLongEnv) != "" }

// loadShape is how long the load tests run and how often the credential rotates.
func loadShape() (run time.Duration, ttl string, rotation time.Duration) {
	if psLong() {
		return 60 * time.Second, "15s", 10 * time.Second
	}
	return 15 * time.Second, "4500ms", 3 * time.Second
}

// peak samples count every 100 ms until stop is closed and returns the highest value seen.
func peak(t *testing.T, stop <-chan struct{}, count func() (int, error)) func() int {
	var mu sync.Mutex
	highest := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := count(); err == nil {
				mu.Lock()
				highest = max(highest, n)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return highest
	}
}

// checkRotated checks, while serve still runs, that the credentials of db rotated about as
// often as they should and that every one but the current has been deleted (a credential
// replaced a moment ago gets a few seconds to drain).
func (w *psWorld) checkRotated(t *testing.T, db string, minted int) {
	t.Helper()
	var creds []pstest.Cred
	err := eventually(testContext(t, 10*time.Second), func() error {
		creds = creds[:0]
		for _, c := range w.fake.Creds() {
			if c.DB == db {
				creds = append(creds, c)
			}
		}
		for i, c := range creds[:max(len(creds)-1, 0)] {
			if !c.Deleted {
				return fmt.Errorf("credential %d of %d (%s) is not deleted after its replacement (expired: %v)", i+1, len(creds), c.ID, c.Expired)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if len(creds) < minted {
		t.Errorf("%d credentials minted for %s, want at least %d", len(creds), db, minted)
	}
	if len(creds) > 0 && creds[len(creds)-1].Deleted {
		t.Errorf("the current credential of %s is deleted", db)
	}
	t.Logf("%s: %d credentials minted; all but the current deleted while serving", db, len(creds))
}

// checkShutdown checks that serve exits 0, deletes every credential it minted for db, and
// printed no secret.
func (w *psWorld) checkShutdown(t *testing.T, child *psChild, db string) {
	t.Helper()
	if code := child.stop(t); code != 0 {
		t.Errorf("serve exited %d:\n%s", code, child.stderr)
	}
	output := child.stdout.String() + child.stderr.String()
	for _, c := range w.fake.Creds() {
		if strings.Contains(output, c.Password) {
			t.Errorf("a password reached slipstream's output")
		}
	}
	if strings.Contains(output, psSecret) {
		t.Error("the service token reached slipstream's output")
	}
	if live := liveFor(w.fake, db); len(live) != 0 {
		t.Errorf("%d credentials of %s left in the API after shutdown", len(live), db)
	}
}

func TestPlanetScale(t *testing.T) {
	w := startPSWorld(t)

	t.Run("serve exits 2 naming what the API refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, token, origin, want string
		}{
			{"a refused token", "wrong-" + psSecret, "planetscale://acme/shop/main", `service token was refused listing the databases of organization "acme": planetscale API: GET /organizations/acme/databases: 401 (unauthorized: The access token is invalid)`},
			{"an unknown organization", psSecret, "planetscale://nope/shop/main", `organization "nope" not found (or the token may not see it): planetscale API: GET /organizations/nope/databases: 404 (not_found: Not Found)`},
			{"an unknown database", psSecret, "planetscale://acme/nope/main", `organization "acme" has no database "nope" (it has 2: ledger, shop)`},
			{"an unknown branch", psSecret, "planetscale://acme/shop/nope", `database acme/shop has no branch "nope" (it has main, dev)`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := w.start(t, tc.token, "serve", "--origin", tc.origin, "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0",
					"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
				if code := c.wait(t, 30*time.Second); code != 2 {
					t.Errorf("exit %d, want 2", code)
				}
				stderr := strings.TrimSpace(c.stderr.String())
				if strings.Count(stderr, "\n") != 0 || !strings.HasPrefix(stderr, "slipstream serve: ") || !strings.Contains(stderr, tc.want) {
					t.Errorf("stderr %q, want one line with %q", stderr, tc.want)
				}
				if strings.Contains(stderr, psSecret) {
					t.Errorf("stderr shows the token: %s", stderr)
				}
			})
		}
	})

	t.Run("planetscale databases, branches and check", func(t *testing.T) {
		c := w.start(t, psSecret, "planetscale", "databases", "acme")
		if code := c.wait(t, 30*time.Second); code != 0 || !regexp.MustCompile(`(?m)^ledger\s+postgresql\s+ready`).MatchString(c.stdout.String()) ||
			!regexp.MustCompile(`(?m)^shop\s+mysql\s+ready`).MatchString(c.stdout.String()) {
			t.Errorf("databases: exit %d\n%s%s", code, c.stdout, c.stderr)
		}
		c = w.start(t, psSecret, "planetscale", "branches", "acme/shop")
		if code := c.wait(t, 30*time.Second); code != 0 || !regexp.MustCompile(`(?m)^main\s+true\s+true\n^dev\s+false\s+true`).MatchString(c.stdout.String()) {
			t.Errorf("branches: exit %d\n%s%s", code, c.stdout, c.stderr)
		}
		for _, target := range []string{"acme/ledger/main", "acme/shop/dev"} {
			before := len(w.fake.Creds())
			c = w.start(t, psSecret, "planetscale", "check", target)
			code := c.wait(t, 60*time.Second)
			out := c.stdout.String()
			t.Logf("check %s:\n%s%s", target, out, c.stderr)
			if code != 0 || !strings.Contains(out, "connected over verified TLS and ran SELECT 1") || !strings.HasSuffix(out, "ok\n") {
				t.Errorf("check %s: exit %d", target, code)
			}
			creds := w.fake.Creds()
			if len(creds) != before+1 || !creds[len(creds)-1].Deleted || strings.Contains(out, creds[len(creds)-1].Password) {
				t.Errorf("check %s did not mint one credential and delete it, or printed its password", target)
			}
		}
		c = w.start(t, psSecret, "planetscale", "check", "acme/shop/nope")
		if code := c.wait(t, 30*time.Second); code != 2 || !strings.Contains(c.stderr.String(), `has no branch "nope"`) {
			t.Errorf("check of an unknown branch: exit %d, want 2\n%s", code, c.stderr)
		}
	})

	t.Run("pgbench while the credential rotates", func(t *testing.T) {
		run, ttl, rotation := loadShape()
		const limit = 4
		child, dsn := w.serve(t, fmt.Sprintf("[[database]]\norigin = \"planetscale://acme/ledger/main\"\ncredential_ttl = %q\nmax_connections = %d\ncatalog_refresh = \"1h\"\n", ttl, limit))
		admin, err := pgx.Connect(testContext(t, time.Minute), w.pg.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		var sslMu sync.Mutex
		plain := 0
		stop := make(chan struct{})
		highest := peak(t, stop, func() (int, error) {
			var n, nonTLS int
			err := admin.QueryRow(context.Background(), `select count(*), count(*) filter (where not coalesce(s.ssl, false))
				from pg_stat_activity a left join pg_stat_ssl s using (pid) where a.usename like 'ps%'`).Scan(&n, &nonTLS)
			sslMu.Lock()
			plain = max(plain, nonTLS)
			sslMu.Unlock()
			return n, err
		})
		out, err := exec.Command("pgbench", "-n", "-c", strconv.Itoa(limit+2), "-j", "2", "-T", strconv.Itoa(int(run/time.Second)), "-M", "prepared", dsn+"?sslmode=disable").CombinedOutput()
		close(stop)
		t.Logf("pgbench through slipstream for %v, credential rotated every %v:\n%s", run, rotation, out)
		if err != nil || !strings.Contains(string(out), "number of failed transactions: 0 ") {
			t.Errorf("pgbench: %v (want no failed transaction); slipstream's log:\n%s", err, child.stderr)
		}
		n := highest()
		t.Logf("at most %d origin connections of minted users (max_connections %d)", n, limit)
		if n > limit || n == 0 {
			t.Errorf("the origin saw at most %d connections of minted users, want 1 to %d", n, limit)
		}
		if plain != 0 {
			t.Errorf("%d origin connections without TLS", plain)
		}
		w.checkRotated(t, "ledger", int(run/rotation))
		w.checkShutdown(t, child, "ledger")
		var roles int
		admin.QueryRow(context.Background(), "select count(*) from pg_roles where rolname like 'ps%'").Scan(&roles)
		if roles != 0 {
			t.Errorf("after shutdown %d minted roles remain in PostgreSQL", roles)
		}
	})

	t.Run("sysbench oltp_read_write while the credential rotates", func(t *testing.T) {
		if _, err := exec.LookPath("sysbench"); err != nil {
			t.Skip("sysbench is not installed")
		}
		run, ttl, rotation := loadShape()
		const limit = 4
		// Tables large enough that 6 threads seldom deadlock: a deadlock (1213) is MariaDB's
		// answer to the workload, which sysbench retries and counts as ignored; any other
		// error ends sysbench with a failure.
		common := []string{"oltp_read_write", "--tables=4", "--table-size=10000", "--mysql-db=shop", "--db-driver=mysql", "--mysql-ignore-errors=1213"}
		if out, err := exec.Command("sysbench", append(common, "--mysql-user=root", "--mysql-socket="+w.my.Socket(), "prepare")...).CombinedOutput(); err != nil {
			t.Fatalf("sysbench prepare: %v\n%s", err, out)
		}
		child, dsn := w.serve(t, fmt.Sprintf("[[database]]\norigin = \"planetscale://acme/shop/main\"\ncredential_ttl = %q\nmax_connections = %d\ncatalog_refresh = \"1h\"\n", ttl, limit))
		m := regexp.MustCompile(`^mysql://slipstream@127\.0\.0\.1:(\d+)/shop$`).FindStringSubmatch(dsn)
		if m == nil {
			t.Fatalf("the connection string %q is not mysql://slipstream@127.0.0.1:PORT/shop", dsn)
		}
		stop := make(chan struct{})
		highest := peak(t, stop, func() (int, error) {
			var n int
			err := w.myRoot.QueryRow("select count(*) from information_schema.processlist where user like 'ps%'").Scan(&n)
			return n, err
		})
		out, err := exec.Command("sysbench", append(common, "--mysql-host=127.0.0.1", "--mysql-port="+m[1], "--mysql-user=slipstream",
			"--threads="+strconv.Itoa(limit+2), "--time="+strconv.Itoa(int(run/time.Second)), "run")...).CombinedOutput()
		close(stop)
		t.Logf("sysbench oltp_read_write through slipstream for %v, credential rotated every %v:\n%s", run, rotation, out)
		if err != nil || !strings.Contains(string(out), "reconnects:                          0 ") {
			t.Errorf("sysbench: %v (want no error, no reconnect)", err)
		}
		n := highest()
		t.Logf("at most %d origin connections of minted users (max_connections %d)", n, limit)
		if n > limit || n == 0 {
			t.Errorf("the origin saw at most %d connections of minted users, want 1 to %d", n, limit)
		}
		w.checkRotated(t, "shop", int(run/rotation))
		w.checkShutdown(t, child, "shop")
		var users int
		w.myRoot.QueryRow("select count(*) from mysql.user where user like 'ps%'").Scan(&users)
		if users != 0 {
			t.Errorf("after shutdown %d minted users remain in MariaDB", users)
		}
	})

	t.Run("the API down for longer than a TTL", func(t *testing.T) {
		w.apiDown(t)
	})

	t.Run("Vitess: resets with COM_RESET_CONNECTION, never COM_CHANGE_USER; NAME@replica passes through", func(t *testing.T) {
		w.vitess(t)
	})

	t.Run("replica_reads sends cacheable reads to a replica, and a session that wrote to the primary", func(t *testing.T) {
		w.replicaReads(t)
	})

}

// psMetricsURL is the /metrics URL a child serve printed.
func psMetricsURL(t *testing.T, c *psChild) string {
	t.Helper()
	m := metricsLine.FindStringSubmatch(c.stdout.String())
	if m == nil {
		t.Fatalf("serve printed no metrics line:\n%s", c.stdout)
	}
	return "http://" + m[1] + "/metrics"
}

func liveFor(f *pstest.Fake, db string) []pstest.Cred {
	var live []pstest.Cred
	for _, c := range f.Live() {
		if c.DB == db {
			live = append(live, c)
		}
	}
	return live
}
