package config

import (
	"strings"
	"testing"
)

func TestStreamSettingsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"a slot name PostgreSQL refuses", `slot = "bench-1"`, "stream.slot"},
		{"a negative max_lag", `max_lag = "-1s"`, "stream.max_lag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("[[database]]\norigin = \"postgres://u:p@h/db\"\n[database.stream]\n" + tc.toml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			c.Normalize()
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want a problem naming %s", err, tc.want)
			}
		})
	}
	c, _ := Parse([]byte("[[database]]\norigin = \"postgres://u:p@h/db\"\n[database.caching]\nmax_age = \"12h\"\n"))
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Errorf("max_age 12h with the default stream invalidation: %v", err)
	}
	c, _ = Parse([]byte("[[database]]\norigin = \"postgres://u:p@h/db\"\ninvalidation = \"ttl\"\n[database.caching]\nmax_age = \"12h\"\n"))
	c.Normalize()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_age") {
		t.Errorf("max_age 12h with ttl invalidation: %v, want a problem", err)
	}
}
