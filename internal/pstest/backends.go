package pstest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MySQLUsers creates MariaDB users for minted passwords: user@'%' with the password, TLS
// required (as PlanetScale requires it), and privileges on database DB by role (reader:
// SELECT; others: ALL). DB is a connection with the right to create users, such as root's.
type MySQLUsers struct {
	Admin    *sql.DB
	Database string
}

// Create makes the user.
func (m MySQLUsers) Create(ctx context.Context, user, password, role string, _ []string, _ time.Time) error {
	privs := "ALL"
	if role == "reader" {
		privs = "SELECT"
	}
	for _, stmt := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s' REQUIRE SSL", user, password),
		fmt.Sprintf("GRANT %s ON `%s`.* TO '%s'@'%%'", privs, m.Database, user),
	} {
		if _, err := m.Admin.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("mysql: %w", err)
		}
	}
	return nil
}

// Drop drops the user and kills its connections.
func (m MySQLUsers) Drop(ctx context.Context, user string) error {
	if _, err := m.Admin.ExecContext(ctx, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	rows, err := m.Admin.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", user)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		m.Admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)) // it may have gone already
	}
	return nil
}

// PostgresRoles creates PostgreSQL roles for minted credentials: LOGIN with the password,
// VALID UNTIL the expiry, member of the inherited roles. AdminURL is a superuser's.
type PostgresRoles struct {
	AdminURL string
}

func (p PostgresRoles) exec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, p.AdminURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
}

// Create makes the role.
func (p PostgresRoles) Create(ctx context.Context, user, password, _ string, inherited []string, expires time.Time) error {
	stmts := []string{fmt.Sprintf("CREATE ROLE %q LOGIN PASSWORD '%s'", user, password)}
	if !expires.IsZero() {
		stmts[0] += " VALID UNTIL '" + expires.UTC().Format(time.RFC3339Nano) + "'"
	}
	if len(inherited) > 0 {
		quoted := make([]string, len(inherited))
		for i, r := range inherited {
			quoted[i] = fmt.Sprintf("%q", r)
		}
		stmts = append(stmts, fmt.Sprintf("GRANT %s TO %q", strings.Join(quoted, ", "), user))
	}
	return p.exec(ctx, stmts...)
}

// Drop ends the role's connections and drops it.
func (p PostgresRoles) Drop(ctx context.Context, user string) error {
	return p.exec(ctx,
		fmt.Sprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s'", user),
		fmt.Sprintf("DROP ROLE IF EXISTS %q", user))
}
