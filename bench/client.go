package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Protocols a workload speaks, chosen by the URL's scheme.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
)

// benchTable is the table the workloads read, created on the origin when missing.
const (
	benchTable = "slipstream_bench"
	benchRows  = 1000
)

// session is one database connection of a workload.
type session interface {
	// query runs one statement and reads its whole answer.
	query(ctx context.Context, sql string) error
	// readInt runs a query answering one integer and returns it.
	readInt(ctx context.Context, sql string) (int64, error)
	close()
}

// connector opens sessions to one URL with one driver: pgx for postgres://, the
// go-sql-driver for mysql://. Both send statements as text in one round trip (pgx's simple
// protocol, MySQL's COM_QUERY), as a serverless function's single query would.
type connector interface {
	connect(ctx context.Context) (session, error)
	protocol() string
}

// ProtocolOf names the protocol of a database URL: Postgres or MySQL.
func ProtocolOf(rawURL string) (string, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", errors.New("not a URL: want postgres://USER:PASSWORD@HOST:PORT/DB or mysql://...")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return Postgres, nil
	case "mysql":
		return MySQL, nil
	}
	return "", fmt.Errorf("scheme %q is not supported: use postgres:// or mysql://", scheme)
}

func newConnector(rawURL string) (connector, error) {
	p, err := ProtocolOf(rawURL)
	if err != nil {
		return nil, err
	}
	if p == MySQL {
		cfg, err := mysqlConfig(rawURL)
		if err != nil {
			return nil, err
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("mysql: %w", err)
		}
		return mysqlConnector{c}, nil
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse errors quote the string, password and all.
		return nil, errors.New("postgres: cannot parse the URL")
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgConnector{cfg}, nil
}

// dial opens one session to rawURL.
func dial(ctx context.Context, rawURL string) (session, error) {
	c, err := newConnector(rawURL)
	if err != nil {
		return nil, err
	}
	return c.connect(ctx)
}

type pgConnector struct{ cfg *pgx.ConnConfig }

func (c pgConnector) protocol() string { return Postgres }

func (c pgConnector) connect(ctx context.Context) (session, error) {
	conn, err := pgx.ConnectConfig(ctx, c.cfg)
	if err != nil {
		return nil, err
	}
	return pgSession{conn}, nil
}

type pgSession struct{ c *pgx.Conn }

func (s pgSession) query(ctx context.Context, sql string) error {
	rows, err := s.c.Query(ctx, sql)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return rows.Err()
}

func (s pgSession) readInt(ctx context.Context, sql string) (int64, error) {
	var v int64
	return v, s.c.QueryRow(ctx, sql).Scan(&v)
}

func (s pgSession) close() {
	// Terminate goes out without waiting for an answer; the timeout only bounds a full socket.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.c.Close(ctx)
}

type mysqlConnector struct{ c driver.Connector }

func (c mysqlConnector) protocol() string { return MySQL }

func (c mysqlConnector) connect(ctx context.Context) (session, error) {
	db := sql.OpenDB(c.c)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return mysqlSession{db, conn}, nil
}

type mysqlSession struct {
	db *sql.DB
	c  *sql.Conn
}

func (s mysqlSession) query(ctx context.Context, sql string) error {
	rows, err := s.c.QueryContext(ctx, sql)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

func (s mysqlSession) readInt(ctx context.Context, sql string) (int64, error) {
	var v int64
	return v, s.c.QueryRowContext(ctx, sql).Scan(&v)
}

func (s mysqlSession) close() {
	s.c.Close()
	s.db.Close()
}

// mysqlConfig turns mysql://USER:PASSWORD@HOST:PORT/DB?PARAMS into the driver's
// configuration; tls=... is the driver's TLS setting, other parameters are its DSN
// parameters or session variables.
func mysqlConfig(rawURL string) (*mysql.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("mysql: cannot parse the URL")
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		if k == "tls" {
			cfg.TLSConfig = v
			continue
		}
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params[k] = v
	}
	return cfg, nil
}

// pointRead is the workloads' read: one row by primary key, in both dialects.
func pointRead(id int) string {
	return fmt.Sprintf("SELECT v FROM %s WHERE id = %d", benchTable, id)
}

// uncachedComment makes Slipstream send a query to the origin even when its answer is cached.
const uncachedComment = "/* slipstream: cache=off */ "

// Prepare creates the workloads' table on the database at rawURL, with benchRows rows, when
// it is missing. Run it against the origin directly: writes through Slipstream would
// invalidate what a cached series measures.
func Prepare(ctx context.Context, rawURL string) error {
	return prepareRows(ctx, rawURL, benchRows)
}

// prepareRows is Prepare with at least rows rows.
func prepareRows(ctx context.Context, rawURL string, rows int) error {
	c, err := newConnector(rawURL)
	if err != nil {
		return err
	}
	s, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect to create %s: %w", benchTable, err)
	}
	defer s.close()
	rows = max(rows, benchRows)
	var stmts []string
	if c.protocol() == MySQL {
		stmts = []string{"CREATE TABLE IF NOT EXISTS " + benchTable + " (id int PRIMARY KEY, v varchar(64) NOT NULL)"}
		for from := 1; from <= rows; from += 1000 {
			var b strings.Builder
			fmt.Fprintf(&b, "INSERT IGNORE INTO %s (id, v) VALUES ", benchTable)
			for i := from; i < from+1000 && i <= rows; i++ {
				if i > from {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "(%d, 'row %d of the slipstream benchmark')", i, i)
			}
			stmts = append(stmts, b.String())
		}
	} else {
		stmts = []string{
			"CREATE TABLE IF NOT EXISTS " + benchTable + " (id int PRIMARY KEY, v text NOT NULL)",
			fmt.Sprintf("INSERT INTO %s SELECT g, 'row ' || g || ' of the slipstream benchmark' FROM generate_series(1, %d) g ON CONFLICT DO NOTHING",
				benchTable, rows),
			"ANALYZE " + benchTable,
		}
	}
	for _, q := range stmts {
		if err := s.query(ctx, q); err != nil {
			return fmt.Errorf("create %s: %w", benchTable, err)
		}
	}
	return nil
}
