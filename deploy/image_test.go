package deploy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// TestImageBuildsAndServes builds the image with podman and runs it: `slipstream version`,
// then `serve` in front of a real PostgreSQL 15, psql through it, and `podman stop` (its
// STOPSIGNAL, SIGTERM) ending it with exit 0. Skipped where podman is not installed.
//
// The Dockerfile's build stage starts from docker.io/library/golang:1.26-bookworm, from a registry. Where no
// registry is reachable (a machine whose only network is package mirrors), the binary is
// built on this host as that stage builds it (the same go build, cgo linked statically), and
// the final stage, the Dockerfile's own text from `FROM scratch` on, is built around it:
// what ships is tested, only the builder differs.
func TestImageBuildsAndServes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the image build takes minutes")
	}
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed: the image is not built (deploy/README.md says how)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tag := "localhost/slipstream-test:latest"
	build := exec.CommandContext(ctx, podman, "build", "-f", "deploy/container/Dockerfile", "-t", tag, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		if !registryUnreachable(string(out)) {
			t.Fatalf("podman build: %v\n%s", err, out)
		}
		t.Logf("no registry for the build stage's image; building the binary here, and the final stage around it:\n%s", lastLines(out, 3))
		buildFinalStage(t, ctx, podman, tag)
	}
	t.Cleanup(func() { exec.Command(podman, "rmi", "-f", tag).Run() })

	opts := runOptions(t, ctx, podman, tag)
	out, err := exec.CommandContext(ctx, podman, append(append([]string{"run", "--rm"}, opts...), tag, "version")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "slipstream ") {
		t.Fatalf("podman run %s version: %v\n%s", tag, err, out)
	}

	pg, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatalf("PostgreSQL 15 (./scripts/test.sh installs it): %v", err)
	}
	defer pg.Stop()
	pgPort, httpPort := freePort(t), freePort(t)
	name := fmt.Sprintf("slipstream-test-%d", os.Getpid())
	run := append(append([]string{"run", "-d", "--name", name, "--network", "host"}, opts...), tag, "serve",
		"--origin", pg.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB),
		"--pg-listen", fmt.Sprintf("127.0.0.1:%d", pgPort), "--http-listen", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if out, err := exec.CommandContext(ctx, podman, run...).CombinedOutput(); err != nil {
		t.Fatalf("podman run serve: %v\n%s", err, out)
	}
	defer exec.Command(podman, "rm", "-f", name).Run()
	logs := func() string {
		out, _ := exec.Command(podman, "logs", name).CombinedOutput()
		return string(out)
	}
	url := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgtest.AppUser, pgtest.AppPassword, pgPort, pgtest.AppDB)
	var answer []byte
	for {
		answer, err = exec.CommandContext(ctx, "psql", url, "-XAtc", "select 41 + 1").CombinedOutput()
		if err == nil || ctx.Err() != nil {
			break
		}
		select { // psql until the container listens
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if strings.TrimSpace(string(answer)) != "42" {
		t.Fatalf("psql through the container: %v %s\n%s", err, answer, logs())
	}
	if out, err := exec.CommandContext(ctx, podman, "stop", "-t", "30", name).CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	code, err := exec.CommandContext(ctx, podman, "inspect", "--format", "{{.State.ExitCode}}", name).Output()
	if err != nil || strings.TrimSpace(string(code)) != "0" {
		t.Errorf("the container's exit code after SIGTERM: %q (%v), want 0\n%s", code, err, logs())
	}
}

// registryUnreachable reports whether a build failed only because the base image's registry
// could not be reached.
func registryUnreachable(out string) bool {
	for _, s := range []string{"pinging container registry", "no such host", "dial tcp", "connection refused"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// fromBuild matches the final stage's copies out of the build stage.
var fromBuild = regexp.MustCompile(`(?m)^COPY --from=build (--chown=\S+ )?/(\S+) (\S+)$`)

// buildFinalStage builds the binary on this host as the Dockerfile's build stage does, lays
// out what the final stage copies from that stage in a build context, and builds the final
// stage, its text unchanged but for where the copies come from.
func buildFinalStage(t *testing.T, ctx context.Context, podman, tag string) {
	t.Helper()
	b, err := os.ReadFile("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	i := strings.LastIndex(df, "\nFROM scratch")
	if i < 0 {
		t.Fatal("the Dockerfile has no final FROM scratch stage")
	}
	dir := t.TempDir()
	for _, d := range []string{"out/var/lib/slipstream", "out/etc/slipstream", "etc/ssl/certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Skipf("no CA bundle on this host to put in the image: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/ssl/certs/ca-certificates.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	// The build stage's command (see the Dockerfile's RUN).
	gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "netgo,osusergo",
		"-ldflags", "-s -w -X main.version=test -linkmode external -extldflags -static",
		"-o", filepath.Join(dir, "out/slipstream"), "./cmd/slipstream")
	gobuild.Dir = ".."
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build (static): %v\n%s", err, out)
	}
	final := fromBuild.ReplaceAllString(df[i+1:], "COPY ${1}$2 $3")
	if strings.Contains(final, "--from=") {
		t.Fatalf("the final stage copies from elsewhere than the build stage:\n%s", final)
	}
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(final), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, podman, "build", "-f", filepath.Join(dir, "Containerfile"), "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("podman build (the final stage):\n%s\n%v\n%s", final, err, out)
	}
}

// runOptions returns what `podman run` needs here besides the image's own settings: its root
// filesystem read-only, as the Kubernetes manifests run it; and, on a host whose container
// runtime may not raise the process limits or manage cgroups (a sandbox), runc with limits
// below the host's.
func runOptions(t *testing.T, ctx context.Context, podman, tag string) []string {
	t.Helper()
	opts := []string{"--read-only"}
	out, err := exec.CommandContext(ctx, podman, append(append([]string{"run", "--rm"}, opts...), tag, "version")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "setrlimit") && !strings.Contains(string(out), "cgroups") {
		return opts
	}
	if _, rerr := exec.LookPath("runc"); rerr != nil {
		t.Skipf("the container runtime cannot start containers on this host, and runc is not installed: %s", lastLines(out, 2))
	}
	t.Logf("the default runtime cannot start containers here (%s): runc, with limits below the host's", strings.TrimSpace(lastLines(out, 1)))
	return append([]string{"--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}, opts...)
}

// freePort returns a loopback TCP port free a moment ago, for a process that takes its
// address as a flag.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
