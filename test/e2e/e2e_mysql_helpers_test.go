package e2e

// Helpers of the MySQL end-to-end tests (e2e_mysql*_test.go): the package's MariaDB, serve
// instances in front of it, go-sql-driver/mysql connections to either, and go-mysql client
// connections for the packets no driver sends.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// maria is the MariaDB 10.11 every MySQL test uses as its origin. It starts in the background
// while PostgreSQL starts; ready is closed once srv or err is set.
var maria struct {
	ready chan struct{}
	srv   *mytest.Server
	err   error
}

// startMariaDB starts the package's MariaDB in the background. The returned stop waits for
// the start, then stops the server; it reports a server that failed to start, so that a run
// whose MySQL tests could not run fails even when -run selected none of them.
func startMariaDB() (stop func() error) {
	maria.ready = make(chan struct{})
	go func() {
		defer close(maria.ready)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		maria.srv, maria.err = mytest.Start(ctx)
	}()
	return func() error {
		<-maria.ready
		if maria.err != nil {
			return fmt.Errorf("MariaDB for the MySQL tests did not start: %w", maria.err)
		}
		return maria.srv.Stop()
	}
}

// mariaDB waits for the package's MariaDB and returns it.
func mariaDB(t testing.TB) *mytest.Server {
	t.Helper()
	<-maria.ready
	if maria.err != nil {
		t.Fatalf("MariaDB did not start (./scripts/test.sh installs mariadb-server): %v", maria.err)
	}
	return maria.srv
}

// startMySQLServe runs `slipstream serve --origin mysql://app@MARIADB/app` with a MySQL client
// listener on a free loopback port, plus extraArgs. PGURL holds the printed mysql:// URL.
func startMySQLServe(t testing.TB, extraArgs ...string) *instance {
	t.Helper()
	my := mariaDB(t)
	return runServeFor(t, mytest.AppDB, append([]string{"--mysql-listen", "127.0.0.1:0",
		"--origin", my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)}, extraArgs...))
}

// startMySQLServeTOML runs serve with a --config file holding one [[database]] table of kind
// mysql for the app database, with the given extra TOML lines (such as `max_connections = 10`).
func startMySQLServeTOML(t *testing.T, lines ...string) *instance {
	t.Helper()
	my := mariaDB(t)
	var b strings.Builder
	fmt.Fprintf(&b, "[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n", mytest.AppDB,
		my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB))
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	path := writeTOML(t, b.String())
	return runServeFor(t, mytest.AppDB, []string{"--mysql-listen", "127.0.0.1:0", "--config", path})
}

// mysqlConfig is a go-sql-driver/mysql configuration for the instance's app database, as its
// printed mysql:// URL says (the password is the app's when the URL has none).
func (in *instance) mysqlConfig(t testing.TB) *mysql.Config {
	t.Helper()
	u, err := url.Parse(in.PGURL)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("serve printed %q for database app: want a mysql:// URL (%v)", in.PGURL, err)
	}
	c := newMySQLConfig(u.Host, strings.TrimPrefix(u.Path, "/"))
	if u.User != nil {
		c.User = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			c.Passwd = pw
		}
	}
	return c
}

// mysqlAddr is the host:port MySQL clients connect to.
func (in *instance) mysqlAddr(t testing.TB) string { return in.mysqlConfig(t).Addr }

// directMySQLConfig is the same for MariaDB itself, for comparisons.
func directMySQLConfig(t testing.TB) *mysql.Config {
	return newMySQLConfig(mariaDB(t).Addr(), mytest.AppDB)
}

func newMySQLConfig(addr, db string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = mytest.AppUser, mytest.AppPassword, "tcp", addr, db
	c.Timeout = 10 * time.Second
	return c
}

// openMySQL opens a database/sql pool on c, closed when the test ends.
func openMySQL(t testing.TB, c *mysql.Config) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// mysqlErrno returns the MySQL error number of err, or 0 when err is not a server error.
func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// resultSets runs query and returns every result set it produces as text: a header line of
// column names and database types, then one line per row, NULL spelled NULL and bytes that
// are not printable as hex. It is for comparing answers through slipstream with direct ones.
func resultSets(ctx context.Context, q querier, query string, args ...any) ([][]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sets [][]string
	for {
		cols, err := rows.ColumnTypes()
		if err != nil {
			return nil, err
		}
		var set []string
		var header []string
		for _, c := range cols {
			header = append(header, c.Name()+" "+c.DatabaseTypeName())
		}
		set = append(set, strings.Join(header, " | "))
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			line := make([]string, len(vals))
			for i, v := range vals {
				line[i] = showValue(v)
			}
			set = append(set, strings.Join(line, " | "))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		sets = append(sets, set)
		if !rows.NextResultSet() {
			break
		}
	}
	return sets, rows.Err()
}

func showValue(v sql.RawBytes) string {
	if v == nil {
		return "NULL"
	}
	for _, b := range v {
		if b < 0x20 || b > 0x7e {
			return fmt.Sprintf("0x%x", []byte(v))
		}
	}
	return string(v)
}

// sameResults runs query with args on got (through slipstream) and want (MariaDB directly) and
// reports any difference.
func sameResults(t *testing.T, ctx context.Context, got, want querier, query string, args ...any) {
	t.Helper()
	g, gerr := resultSets(ctx, got, query, args...)
	w, werr := resultSets(ctx, want, query, args...)
	if gerr != nil || werr != nil {
		if mysqlErrno(gerr) != mysqlErrno(werr) || (gerr == nil) != (werr == nil) {
			t.Errorf("%s\nthrough slipstream: %v\ndirectly:           %v", query, gerr, werr)
		}
		return
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("%s: answers differ\nthrough slipstream:\n%s\ndirectly:\n%s", query, showSets(g), showSets(w))
	}
}

func showSets(sets [][]string) string {
	var b strings.Builder
	for i, s := range sets {
		fmt.Fprintf(&b, "  result set %d:\n", i+1)
		for _, l := range s {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// rawMySQL connects go-mysql's client to the app database at addr, closed when the test ends.
// It leaves out CLIENT_DEPRECATE_EOF and CLIENT_QUERY_ATTRIBUTES, so that the packets
// cursorFetch writes and reads have their classic shape.
func rawMySQL(t testing.TB, addr string) *client.Conn {
	t.Helper()
	c, err := client.ConnectWithTimeout(addr, mytest.AppUser, mytest.AppPassword, mytest.AppDB, 10*time.Second,
		func(c *client.Conn) error {
			c.UnsetCapability(gomysql.CLIENT_DEPRECATE_EOF)
			c.UnsetCapability(gomysql.CLIENT_QUERY_ATTRIBUTES)
			return nil
		})
	if err != nil {
		t.Fatalf("go-mysql client to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cursorFetch prepares query (one BIGINT parameter, one integer column), executes it with
// arg opening a read-only cursor, and fetches batch rows at a time until the server says the
// last row is sent. It returns the values of each batch.
func cursorFetch(c *client.Conn, query string, arg int64, batch uint32) ([][]uint64, error) {
	stmt, err := c.Prepare(query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	if stmt.ParamNum() != 1 || stmt.ColumnNum() != 1 {
		return nil, fmt.Errorf("prepare: %d parameters and %d columns, want 1 and 1", stmt.ParamNum(), stmt.ColumnNum())
	}
	// COM_STMT_EXECUTE: id, flags (read-only cursor), iteration count 1, null bitmap, types
	// bound (LONGLONG), the value.
	exec := []byte{0, 0, 0, 0, gomysql.COM_STMT_EXECUTE}
	exec = binary.LittleEndian.AppendUint32(exec, stmt.ID)
	exec = append(exec, gomysql.CURSOR_TYPE_READ_ONLY)
	exec = binary.LittleEndian.AppendUint32(exec, 1)
	exec = append(exec, 0, 1, gomysql.MYSQL_TYPE_LONGLONG, 0)
	exec = binary.LittleEndian.AppendUint64(exec, uint64(arg))
	if err := writeCommand(c, exec); err != nil {
		return nil, fmt.Errorf("execute: %w", err)
	}
	// The answer to an execute that opened a cursor: column count, definitions, EOF, no rows.
	if _, err := readPacket(c); err != nil {
		return nil, fmt.Errorf("execute: %w", err)
	}
	if _, err := readPacket(c); err != nil { // the one column definition
		return nil, fmt.Errorf("execute: %w", err)
	}
	status, err := readEOF(c)
	if err != nil {
		return nil, fmt.Errorf("execute: %w", err)
	}
	if status&gomysql.SERVER_STATUS_CURSOR_EXISTS == 0 {
		return nil, fmt.Errorf("execute: no cursor opened (status %#x)", status)
	}
	var batches [][]uint64
	for range 100 {
		fetch := []byte{0, 0, 0, 0, gomysql.COM_STMT_FETCH}
		fetch = binary.LittleEndian.AppendUint32(fetch, stmt.ID)
		fetch = binary.LittleEndian.AppendUint32(fetch, batch)
		if err := writeCommand(c, fetch); err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		var rows []uint64
		for {
			p, err := readPacket(c)
			if err != nil {
				return nil, fmt.Errorf("fetch: %w", err)
			}
			if p[0] == gomysql.EOF_HEADER && len(p) < 9 {
				status = binary.LittleEndian.Uint16(p[3:5])
				break
			}
			// A binary row: header 0, a null bitmap of (1 column + 7 + 2) / 8 = 1 byte, 8 bytes.
			if len(p) != 10 || p[0] != 0 {
				return nil, fmt.Errorf("fetch: unexpected row packet %x", p)
			}
			rows = append(rows, binary.LittleEndian.Uint64(p[2:]))
		}
		if len(rows) > 0 {
			batches = append(batches, rows)
		}
		if status&gomysql.SERVER_STATUS_LAST_ROW_SEND != 0 {
			return batches, nil
		}
	}
	return nil, fmt.Errorf("fetch: no last row after 100 fetches (%v)", batches)
}

// writeCommand writes one command packet (data has 4 bytes of room for the header) at sequence 0.
func writeCommand(c *client.Conn, data []byte) error {
	c.ResetSequence()
	return c.WritePacket(data)
}

// readPacket reads one packet and turns an ERR packet into an error.
func readPacket(c *client.Conn) ([]byte, error) {
	p, err := c.ReadPacket()
	if err != nil {
		return nil, err
	}
	if len(p) > 0 && p[0] == gomysql.ERR_HEADER {
		return nil, c.HandleErrorPacket(p)
	}
	if len(p) == 0 {
		return nil, errors.New("empty packet")
	}
	return p, nil
}

// readEOF reads an EOF packet and returns its status flags.
func readEOF(c *client.Conn) (uint16, error) {
	p, err := readPacket(c)
	if err != nil {
		return 0, err
	}
	if p[0] != gomysql.EOF_HEADER || len(p) < 5 {
		return 0, fmt.Errorf("want an EOF packet, got %x", p)
	}
	return binary.LittleEndian.Uint16(p[3:5]), nil
}
