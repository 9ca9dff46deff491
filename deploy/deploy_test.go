package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipstream-proxy/slipstream/config"
)

// manifests are the objects of one Kubernetes file, decoded strictly.
type manifests struct {
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
}

// decodeManifests decodes each document of a multi-document YAML file into its Kubernetes
// type; an unknown field, a duplicate key or a kind not expected here is an error.
func decodeManifests(t *testing.T, path string) manifests {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s document %d: %v", path, i+1, err)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "v1 Service":
			obj = &corev1.Service{}
		default:
			t.Fatalf("%s document %d: %s %s is not a kind this test knows", path, i+1, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s document %d (%s): %v", path, i+1, head.Kind, err)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *appsv1.Deployment:
			m.deployments[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// slipstreamConfig parses a TOML configuration strictly and validates it as the command
// would (pool: ValidatePool), without reading the secret files it names.
func slipstreamConfig(t *testing.T, where, toml, command string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(toml))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	for i := range cfg.Databases {
		if cfg.Databases[i].PasswordFile != "" {
			cfg.Databases[i].PasswordFile = "" // read at start; here a stand-in password
			cfg.Databases[i].Password = "stand-in"
		}
	}
	cfg.Normalize()
	validate := cfg.Validate
	switch command {
	case "pool":
		validate = cfg.ValidatePool
	case "edge":
		validate = cfg.ValidateEdge
	}
	if err := validate(); err != nil {
		t.Fatalf("%s: the configuration does not validate:\n%v", where, err)
	}
	return cfg
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// containerPort is the number of c's port named name.
func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// checkSlipstreamContainer checks what every Slipstream container needs: the probes on the
// HTTP port of its configuration, a read-only root filesystem as user 65532, resources, a
// preStop, and volumes that exist in the manifests.
func checkSlipstreamContainer(t *testing.T, m manifests, d *appsv1.Deployment, c corev1.Container) config.Config {
	t.Helper()
	if len(c.Args) < 3 || c.Args[1] != "--config" {
		t.Fatalf("%s: args %v, want COMMAND --config FILE", c.Name, c.Args)
	}
	command, file := c.Args[0], c.Args[2]
	var cfg config.Config
	found := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != file {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				cm := m.configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Fatalf("%s: ConfigMap %s is not in the manifests", c.Name, v.ConfigMap.Name)
				}
				cfg = slipstreamConfig(t, "ConfigMap "+cm.Name, cm.Data[vm.SubPath], command)
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("%s: no ConfigMap mounted at %s", c.Name, file)
	}
	httpPort := port(t, cfg.HTTPListen)
	if containerPort(c, "http") != httpPort {
		t.Errorf("%s: port http is %d, http_listen %s", c.Name, containerPort(c, "http"), cfg.HTTPListen)
	}
	if h, _, _ := net.SplitHostPort(cfg.HTTPListen); h != "0.0.0.0" {
		t.Errorf("%s: http_listen %s: the kubelet probes the pod's address, not loopback", c.Name, cfg.HTTPListen)
	}
	for name, p := range map[string]*corev1.Probe{"/startup": c.StartupProbe, "/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: want an httpGet probe of %s on port http, have %+v", c.Name, name, p)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		t.Errorf("%s: no preStop", c.Name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: want a CPU request and a memory limit, have %+v", c.Name, c.Resources)
	}
	sc, psc := c.SecurityContext, d.Spec.Template.Spec.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("%s: want a read-only root filesystem and user 65532", c.Name)
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if drain := cfg.ShutdownMinDelay.Duration + cfg.ShutdownTimeout.Duration; grace == nil || float64(*grace) <= drain.Seconds() {
		t.Errorf("%s: terminationGracePeriodSeconds %v is not above shutdown_min_delay + shutdown_timeout (%v): the kubelet would kill the drain", c.Name, grace, drain)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && m.secrets[v.Secret.SecretName] == nil && v.Secret.SecretName != "slipstream-pool-certs" {
			t.Errorf("volume %s: Secret %s is not in the manifests", v.Name, v.Secret.SecretName)
		}
	}
	return cfg
}

func TestKubernetesSidecarManifest(t *testing.T) {
	m := decodeManifests(t, "kubernetes/sidecar.yaml")
	d := m.deployments["app"]
	if d == nil {
		t.Fatal("no Deployment app")
	}
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "slipstream" {
		t.Fatalf("init containers %v, want slipstream as the native sidecar", spec.InitContainers)
	}
	sidecar := spec.InitContainers[0]
	if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the slipstream init container has no restartPolicy: Always: it would be an init container, not a sidecar")
	}
	cfg := checkSlipstreamContainer(t, m, d, sidecar)
	if h, _, _ := net.SplitHostPort(cfg.PGListen); h != "127.0.0.1" {
		t.Errorf("pg_listen %s: a sidecar serves its pod over loopback", cfg.PGListen)
	}
	app := spec.Containers[0]
	var url string
	for _, e := range app.Env {
		if e.Name == "DATABASE_URL" {
			url = e.Value
		}
	}
	if want := fmt.Sprintf("@%s/%s?", cfg.PGListen, cfg.Databases[0].Name); !strings.Contains(url, want) {
		t.Errorf("the app's DATABASE_URL %q does not point at the sidecar (%s)", url, want)
	}
}

func TestKubernetesPoolManifest(t *testing.T) {
	m := decodeManifests(t, "kubernetes/pool.yaml")
	d := m.deployments["slipstream-pool"]
	if d == nil {
		t.Fatal("no Deployment slipstream-pool")
	}
	c := d.Spec.Template.Spec.Containers[0]
	cfg := checkSlipstreamContainer(t, m, d, c)
	tunnel := port(t, cfg.TunnelListen)
	var udp bool
	for _, p := range c.Ports {
		udp = udp || (p.Name == "tunnel" && p.ContainerPort == tunnel && p.Protocol == corev1.ProtocolUDP)
	}
	if !udp {
		t.Errorf("the pool container has no UDP port tunnel %d (tunnel_listen %s)", tunnel, cfg.TunnelListen)
	}
	svc := m.services["slipstream-pool"]
	if svc == nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Protocol != corev1.ProtocolUDP || svc.Spec.Ports[0].TargetPort.String() != "tunnel" {
		t.Errorf("Service slipstream-pool: want one UDP port to the container's tunnel port, have %+v", svc)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the pool's pods do not carry", k, v)
		}
	}
}

// loadCompose loads a compose file with the compose-spec loader, which validates it against
// the compose schema.
func loadCompose(t *testing.T, path string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{"PG_PASSWORD": "app-secret", "MARIADB_PASSWORD": "shop-secret"},
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// composeCommand returns the Slipstream command a service runs and its configuration.
func composeConfig(t *testing.T, p *types.Project, service string) (string, config.Config) {
	t.Helper()
	s, err := p.GetService(service)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Command) < 3 || s.Command[1] != "--config" {
		t.Fatalf("service %s: command %v, want COMMAND --config FILE", service, s.Command)
	}
	for _, c := range s.Configs {
		if c.Target == s.Command[2] {
			return s.Command[0], slipstreamConfig(t, "compose config "+c.Source, p.Configs[c.Source].Content, s.Command[0])
		}
	}
	t.Fatalf("service %s: no config mounted at %s", service, s.Command[2])
	return "", config.Config{}
}

func TestComposeServeInFrontOfPostgreSQLAndMariaDB(t *testing.T) {
	p := loadCompose(t, "compose.yaml")
	_, cfg := composeConfig(t, p, "slipstream")
	kinds := map[string]bool{}
	for _, d := range cfg.Databases {
		kinds[d.Kind] = true
		host := strings.Split(strings.Split(d.Origin, "@")[1], ":")[0]
		if _, err := p.GetService(host); err != nil {
			t.Errorf("database %s: its origin host %s is no service of the file", d.Name, host)
		}
	}
	if !kinds[config.KindMySQL] || !kinds["postgres"] {
		t.Errorf("databases of kinds %v, want PostgreSQL and MariaDB", kinds)
	}
	s, _ := p.GetService("slipstream")
	if !s.ReadOnly || s.User != "65532:65532" || s.Build == nil || s.Build.Dockerfile != "deploy/container/Dockerfile" {
		t.Errorf("service slipstream: read_only %v user %q build %+v: want the image of deploy/container, read-only, as 65532", s.ReadOnly, s.User, s.Build)
	}
	for _, secret := range s.Secrets {
		if _, ok := p.Secrets[secret.Source]; !ok {
			t.Errorf("secret %s is not defined", secret.Source)
		}
	}
}

func TestComposeSplitShape(t *testing.T) {
	p := loadCompose(t, "compose.split.yaml")
	_, pool := composeConfig(t, p, "pool")
	_, edge := composeConfig(t, p, "edge")
	if len(edge.Pools) != 1 || port(t, edge.Pools[0].Address) != port(t, pool.TunnelListen) {
		t.Errorf("the edge dials %v, the pool listens on %s", edge.Pools, pool.TunnelListen)
	}
	if pool.CertsDir != edge.CertsDir {
		t.Errorf("certs_dir: pool %s, edge %s: both read the certificates the certs service makes", pool.CertsDir, edge.CertsDir)
	}
	certs, _ := p.GetService("certs")
	if len(certs.Command) < 3 || certs.Command[0] != "certs" || certs.Command[2] != pool.CertsDir {
		t.Errorf("service certs runs %v, want certs --dir %s", certs.Command, pool.CertsDir)
	}
}

func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("systemd/slipstream.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "DynamicUser=yes",
		"StateDirectory=slipstream", "ProtectSystem=strict", "NoNewPrivileges=yes"} {
		if !bytes.Contains(unit, []byte("\n"+want+"\n")) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	example, err := os.ReadFile("systemd/slipstream.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := slipstreamConfig(t, "systemd/slipstream.toml", string(example), "serve")
	if stop := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)$`).FindSubmatch(unit); stop == nil || mustAtoi(t, string(stop[1])) <= int(cfg.ShutdownTimeout.Seconds()) {
		t.Errorf("TimeoutStopSec must be above shutdown_timeout (%v), or systemd kills the drain", cfg.ShutdownTimeout)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not verified")
	}
	// verify checks that ExecStart's binary exists: point it at one that does.
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyUnit := bytes.ReplaceAll(unit, []byte("/usr/local/bin/slipstream"), []byte(self))
	path := filepath.Join(dir, "slipstream.service")
	if err := os.WriteFile(path, copyUnit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify also reports on the host's own units; only lines about ours count.
	var ours []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "slipstream.service") {
			ours = append(ours, l)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) < 2 || stages[len(stages)-1][1] != "scratch" {
		t.Errorf("stages %v: want a build stage and a final FROM scratch", stages)
	}
	for _, want := range []string{"USER 65532:65532", "STOPSIGNAL SIGTERM", "-extldflags -static", "ca-certificates.crt",
		"EXPOSE 6432/tcp 3307/tcp 9432/tcp 9433/tcp 7432/udp", "VOLUME /var/lib/slipstream"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	def := config.Default()
	for _, addr := range []string{def.PGListen, def.MySQLListen, def.HTTPListen} {
		if p := port(t, addr); !strings.Contains(df, fmt.Sprintf("%d/tcp", p)) {
			t.Errorf("the default port %d is not documented with EXPOSE", p)
		}
	}
}
