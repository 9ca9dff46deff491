package config

import (
	"fmt"
	"os"
	"strings"
)

// Admin are the admin console's and the dashboard's users (PgBouncer's admin_users and
// stats_users): the console is the database "slipstream" (or "pgbouncer") on pg_listen.
type Admin struct {
	AdminUsers []string `toml:"admin_users"` // may run every console command and see the dashboard; empty: none
	StatsUsers []string `toml:"stats_users"` // may run SHOW commands and see the dashboard; empty: none
	// AdminPassword is both kinds of users' password; empty (and no file): they log in without
	// one, and only while pg_listen is a loopback address (and http_listen, for the dashboard).
	AdminPassword     string `toml:"admin_password"`
	AdminPasswordFile string `toml:"admin_password_file"` // a file holding the password (a mounted secret); empty: AdminPassword
}

// Password returns the console's password: AdminPasswordFile's first line, or AdminPassword.
func (a Admin) Password() (string, error) {
	if a.AdminPasswordFile == "" {
		return a.AdminPassword, nil
	}
	b, err := os.ReadFile(a.AdminPasswordFile)
	if err != nil {
		return "", fmt.Errorf("admin_password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// validateAdmin reports the admin settings' problems.
func (a Admin) validateAdmin() []string {
	var errs []string
	if a.AdminPassword != "" && a.AdminPasswordFile != "" {
		errs = append(errs, "admin_password and admin_password_file are both set; keep one")
	}
	for _, u := range append(append([]string(nil), a.AdminUsers...), a.StatsUsers...) {
		if strings.TrimSpace(u) == "" {
			errs = append(errs, "admin_users and stats_users may not hold an empty name")
			break
		}
	}
	return errs
}
