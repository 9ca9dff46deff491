package config

import (
	"strings"
	"testing"
	"time"
)

func TestPlanetScaleDatabaseFromTOML(t *testing.T) {
	c, err := Parse([]byte(`
[[database]]
origin = "planetscale://acme/shop/main?role=reader"
service_token_file = "/run/secrets/ps"
credential_ttl = "10m"
`))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := c.Databases[0]
	if !d.IsPlanetScale() || d.Name != "shop" || d.User != "slipstream" || d.AuthMethod != "trust" || d.Kind != "" ||
		d.ServiceTokenFile != "/run/secrets/ps" || d.CredentialTTL.Duration != 10*time.Minute {
		t.Errorf("database %+v", d)
	}
	d.SetPlanetScaleKind("mysql")
	if d.Kind != KindMySQL || d.MaxConnections != defaultMaxConnections {
		t.Errorf("after the API's kind: %+v", d)
	}
	o, err := ParsePlanetScaleOrigin(d.Origin)
	if err != nil || o != (PlanetScaleOrigin{Org: "acme", Database: "shop", Branch: "main", Role: "reader"}) {
		t.Errorf("origin %+v, %v", o, err)
	}
}

func TestPlanetScaleOriginProblems(t *testing.T) {
	for _, tc := range []struct{ origin, want string }{
		{"planetscale://acme/shop", "want planetscale://ORG/DATABASE/BRANCH"},
		{"planetscale://acme/shop/main?role=root", `role "root" is not one of`},
		{"planetscale://acme/shop/main?sslmode=disable", `unknown parameter "sslmode"`},
		{"planetscale://u:s3cret@acme/shop/main", "takes no user or password"},
	} {
		c := Config{Databases: []Database{{Origin: tc.origin}}}
		c.Normalize()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.origin, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.origin, err)
		}
	}
	c := Config{PGListen: "0.0.0.0:6432", Databases: []Database{{Origin: "planetscale://acme/shop/main"}}}
	c.Normalize()
	c.Databases[0].SetPlanetScaleKind("postgresql")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth_method trust") {
		t.Errorf("trust beyond loopback: %v", err)
	}
}

func TestPlanetScaleReplicaReadsSettings(t *testing.T) {
	for _, tc := range []struct {
		name, toml, kind, want string
		ryw                    time.Duration
	}{
		{"replica_reads defaults read_your_writes to 2s", "replica_reads = true", "mysql", "", 2 * time.Second},
		{"read_your_writes as set", "replica_reads = true\nread_your_writes = \"10s\"", "mysql", "", 10 * time.Second},
		{"read_your_writes without replica_reads is refused", "read_your_writes = \"1s\"", "mysql", "replica_reads is not", time.Second},
		{"a negative read_your_writes is refused", "replica_reads = true\nread_your_writes = \"-1s\"", "mysql", "must not be negative", -time.Second},
		{"replica_reads needs caching", "replica_reads = true\n[database.caching]\ndisabled = true", "mysql", "replica_reads needs caching", 2 * time.Second},
		{"replica_reads is for MySQL branches", "replica_reads = true", "postgresql", "replica_reads is for MySQL", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("[[database]]\norigin = \"planetscale://acme/shop/main\"\n" + tc.toml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			c.Normalize()
			c.Databases[0].SetPlanetScaleKind(tc.kind)
			err = c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
			if got := c.Databases[0].ReadYourWrites.Duration; got != tc.ryw {
				t.Errorf("read_your_writes %v, want %v", got, tc.ryw)
			}
		})
	}
}
