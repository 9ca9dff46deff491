package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startPSNode runs `slipstream ARGS...` with the fake API's environment and waits until its
// output matches every pattern; it returns each pattern's first submatch.
func (w *psWorld) startPSNode(t *testing.T, patterns []*regexp.Regexp, args ...string) (*psChild, []string) {
	t.Helper()
	c := w.start(t, psSecret, args...)
	subs := make([]string, len(patterns))
	err := eventually(testContext(t, 60*time.Second), func() error {
		select {
		case <-c.done:
			return fmt.Errorf("slipstream %s exited %d", args[0], c.code)
		default:
		}
		for i, p := range patterns {
			m := p.FindStringSubmatch(c.stdout.String())
			if m == nil {
				return fmt.Errorf("slipstream %s printed no %s yet", args[0], p)
			}
			subs[i] = m[len(m)-1]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, c.stdout, c.stderr)
	}
	return c, subs
}

// replicaPoolTOML is the pool's configuration of database inventory; replica settings in lines.
func replicaPoolTOML(certs string, lines ...string) string {
	return fmt.Sprintf("tunnel_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ncerts_dir = %q\nregion = \"test\"\n"+
		"[[database]]\norigin = \"planetscale://acme/inventory/main\"\ncatalog_refresh = \"1h\"\n%s\n", certs, strings.Join(lines, "\n"))
}

// writeAtomically replaces the file at path with body, as an editor or a ConfigMap update does.
func writeAtomically(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// edgeAndPool: replica_reads under `slipstream edge` + `slipstream pool`, the pool minting the
// credentials and holding the replica pool, the edge routing each read across the QUIC tunnel.
// Then the pool's replica setting changes by SIGHUP, twice, under one client session: off, its
// reads go to the primary and the replica credential is deleted; on again, they go to a
// replica pool on a credential minted anew.
func (rw *replicaWorld) edgeAndPool(t *testing.T) {
	certs := makeCerts(t)
	poolTOML := filepath.Join(t.TempDir(), "pool.toml")
	on := []string{"replica_reads = true", fmt.Sprintf("read_your_writes = %q", replicaRYW)}
	writeAtomically(t, poolTOML, replicaPoolTOML(certs, on...))
	pool, got := rw.startPSNode(t, []*regexp.Regexp{tunnelLine, metricsLine}, "pool", "--config", poolTOML, "--data-dir", t.TempDir())
	tunnelAddr, metricsURL := got[0], "http://"+got[1]+"/metrics"
	edgeTOML := writeTOML(t, fmt.Sprintf("certs_dir = %q\n[[pool]]\nname = \"test\"\naddress = %q\n"+
		"[[database]]\norigin = \"planetscale://acme/inventory/main\"\ncatalog_refresh = \"1h\"\n", certs, tunnelAddr))
	edge, got := rw.startPSNode(t, []*regexp.Regexp{regexp.MustCompile(`(?m)^database inventory: (\S+)$`)},
		"edge", "--config", edgeTOML, "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	dsn := got[0]
	if strings.Contains(pool.stderr.String(), "replica_reads is served by slipstream serve only") {
		t.Error("the pool still says it sends every read to the primary")
	}
	rw.checkRouting(t, dsn, pool, metricsURL)

	t.Run("reload", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		s := rw.session(t, ctx, dsn) // one session across the reloads
		if got := s.read(cacheableRead, 99); got != replicaOnly {
			t.Fatalf("before the reload a cacheable read got %q, want the replica's %q", got, replicaOnly)
		}
		primaries := func() (n int) { // primary credentials ever minted
			for _, c := range rw.fake.Creds() {
				if c.DB == "inventory" && !c.Replica {
					n++
				}
			}
			return n
		}
		before := primaries()
		reloads := 0
		reload := func(lines ...string) {
			t.Helper()
			writeAtomically(t, poolTOML, replicaPoolTOML(certs, lines...))
			reloads++
			pool.cmd.Process.Signal(syscall.SIGHUP)
			if err := eventually(ctx, func() error {
				if n := strings.Count(pool.stderr.String(), "configuration reloaded"); n < reloads {
					return fmt.Errorf("%d reloads logged, want %d", n, reloads)
				}
				return nil
			}); err != nil {
				t.Fatalf("%v\n%s", err, pool.stderr)
			}
		}
		liveReplicas := func() (n int) {
			for _, c := range liveFor(rw.fake, "inventory") {
				if c.Replica {
					n++
				}
			}
			return n
		}

		reload() // replica_reads off
		if got := s.read(cacheableRead, 99); got != "" {
			t.Errorf("with replica_reads turned off by a reload, a cacheable read got %q, want the primary's (no row)\n%s", got, pool.stderr)
		}
		if err := eventually(ctx, func() error {
			if n := liveReplicas(); n != 0 {
				return fmt.Errorf("%d replica credentials live", n)
			}
			return nil
		}); err != nil {
			t.Errorf("replica_reads turned off: %v, want the replica credential deleted", err)
		}

		reload(on...) // on again
		if got := s.read(cacheableRead, 99); got != replicaOnly {
			t.Errorf("with replica_reads turned on by a reload, a cacheable read got %q, want the replica's %q\n%s", got, replicaOnly, pool.stderr)
		}
		if n := liveReplicas(); n != 1 {
			t.Errorf("%d replica credentials live after replica_reads was turned on again, want 1", n)
		}
		if strings.Contains(pool.stderr.String(), "reload failed") {
			t.Errorf("a reload failed:\n%s", pool.stderr)
		}
		// The primary's pool and credential stay: only the replica settings changed.
		if strings.Contains(pool.stderr.String(), "reload: database opened") {
			t.Errorf("a reload of replica settings replaced the database's pool:\n%s", pool.stderr)
		}
		if n := primaries(); n != before {
			t.Errorf("the reloads minted %d primary credentials, want none", n-before)
		}
	})

	if code := edge.stop(t); code != 0 {
		t.Errorf("edge exited %d:\n%s", code, edge.stderr)
	}
	rw.checkShutdown(t, pool, "inventory")
	rw.checkReplicaUsersGone(t)
}
