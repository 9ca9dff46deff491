package pgdiff

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ReadTimeout is how long a run waits for answers the server owes before it records a
// TIMEOUT: a pipeline that hangs. Generous: the first unit of a new instance dials the origin,
// and CI machines are shared.
const ReadTimeout = 20 * time.Second

// Transcript is what one server answered to a script, one line per backend message, with a
// "> step" line before the answers each step drew.
type Transcript []string

// Sent returns how many frontend messages the script's run sent: the lines that begin a step,
// but for the admin steps that run on a connection of their own.
func (t Transcript) Sent() int {
	n := 0
	for _, l := range t {
		if strings.HasPrefix(l, "> ") && !strings.HasPrefix(l, "> admin") {
			n++
		}
	}
	return n
}

// Target is a server to play scripts on.
type Target struct {
	URL string // the connection string of the server under test (user, password, database)
	// Direct is a connection string of the same database on PostgreSQL itself, for the run's
	// schema and admin steps; the same user must be able to create schemas there.
	Direct string
}

// Run plays script s on target t in a schema of its own, created for the run and dropped
// after it, and returns what the server answered.
func Run(ctx context.Context, t Target, s *Script) (Transcript, error) {
	schema, drop, err := createSchema(ctx, t.Direct)
	if err != nil {
		return nil, err
	}
	defer drop()
	r := &run{d: describer{schema: schema}, schema: schema, direct: t.Direct}
	defer r.closeAdmin()
	return r.play(ctx, t.URL, s)
}

// run is the state of one Run.
type run struct {
	d      describer
	schema string
	direct string
	admin  *pgconn.PgConn
	out    Transcript
	tr     tracker
}

func (r *run) add(line string) { r.out = append(r.out, line) }

// play connects with the script's startup parameters, then sends its steps.
func (r *run) play(ctx context.Context, url string, s *Script) (Transcript, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgdiff: %w", err)
	}
	cfg.RuntimeParams["search_path"] = r.schema
	for k, v := range s.Params {
		switch k {
		case "database":
			cfg.Database = v
		case "user":
			cfg.User = v
		default:
			cfg.RuntimeParams[k] = v
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		r.connectFailed(err)
		return r.out, nil
	}
	hc, err := conn.Hijack()
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("pgdiff: %w", err)
	}
	defer hc.Conn.Close()
	r.startup(hc)
	ended := false
	for _, st := range s.Steps {
		if ended = !r.step(ctx, hc, st); ended {
			break
		}
	}
	if !ended && !r.tr.closed {
		// A closing Sync: answers nobody owed, or owed and never sent, show up here.
		r.step(ctx, hc, Step{Text: "Sync (end of script)", Msg: &pgproto3.Sync{}})
	}
	return r.out, nil
}

// connectFailed records a failed startup: the error PostgreSQL sent, if any.
func (r *run) connectFailed(err error) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r.add("connect: ErrorResponse " + r.d.fields(&pgproto3.ErrorResponse{Severity: pe.Severity,
			Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint, Position: pe.Position,
			Where: pe.Where, SchemaName: pe.SchemaName, TableName: pe.TableName}))
		return
	}
	r.add("connect: failed without an ErrorResponse")
}

// startup records the ParameterStatus values of the startup, sorted (their order is a
// justified difference), and the transaction status.
func (r *run) startup(hc *pgconn.HijackedConn) {
	keys := make([]string, 0, len(hc.ParameterStatuses))
	for k := range hc.ParameterStatuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.add("startup: ParameterStatus " + k + "=" + r.d.str(hc.ParameterStatuses[k]))
	}
	r.add("startup: ReadyForQuery " + string(hc.TxStatus))
}

// step sends one step and reads what it makes due. It reports false when the connection ended.
func (r *run) step(ctx context.Context, hc *pgconn.HijackedConn, st Step) bool {
	r.add("> " + st.Text)
	if st.Msg == nil {
		if err := r.runAdmin(ctx, st.Admin); err != nil {
			r.add("admin failed: " + err.Error())
		}
		return true
	}
	msg := r.withSchema(st.Msg)
	r.tr.sent(msg)
	hc.Frontend.Send(msg)
	if !answers(st.Msg) {
		return true
	}
	if err := hc.Frontend.Flush(); err != nil {
		r.add("EOF (writing)")
		return false
	}
	hc.Conn.SetReadDeadline(time.Now().Add(ReadTimeout))
	for r.tr.waiting() || r.tr.closed {
		m, err := hc.Frontend.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				r.add("TIMEOUT still owed: " + strings.Join(r.tr.owed(), ", "))
			} else {
				r.add("EOF")
			}
			return false
		}
		r.add(r.d.line(m))
		r.tr.got(m)
	}
	return true
}

// withSchema returns m with $SCHEMA in a Query's text replaced by the run's schema, so that a
// script can name what the whole cluster shares (a LISTEN channel) apart from other runs'.
func (r *run) withSchema(m pgproto3.FrontendMessage) pgproto3.FrontendMessage {
	if q, ok := m.(*pgproto3.Query); ok && strings.Contains(q.String, "$SCHEMA") {
		return &pgproto3.Query{String: strings.ReplaceAll(q.String, "$SCHEMA", r.schema)}
	}
	return m
}

// runAdmin runs sql on a direct connection of the run's own, in the run's schema.
func (r *run) runAdmin(ctx context.Context, sql string) error {
	if r.admin == nil {
		cfg, err := pgconn.ParseConfig(r.direct)
		if err != nil {
			return err
		}
		cfg.RuntimeParams["search_path"] = r.schema
		if r.admin, err = pgconn.ConnectConfig(ctx, cfg); err != nil {
			return err
		}
	}
	_, err := r.admin.Exec(ctx, sql).ReadAll()
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s %s", pe.Code, pe.Message)
	}
	return err
}

func (r *run) closeAdmin() {
	if r.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.admin.Close(ctx)
	}
}

// createSchema makes a schema for one run and returns its name and a function dropping it.
// The direct connection it does that on is kept for the next run (adminConns): a fuzz run plays
// thousands of scripts, and a connection per run was most of a short script's time.
func createSchema(ctx context.Context, direct string) (string, func(), error) {
	var b [6]byte
	rand.Read(b[:])
	name := "pgdiff_" + hex.EncodeToString(b[:])
	conn, err := adminConns.get(ctx, direct)
	if err != nil {
		return "", nil, fmt.Errorf("pgdiff: connecting to create a schema: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name).ReadAll(); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("pgdiff: creating schema %s: %w", name, err)
	}
	return name, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(dctx, "DROP SCHEMA "+name+" CASCADE").ReadAll(); err != nil {
			conn.Close(dctx)
			return
		}
		adminConns.put(direct, conn)
	}, nil
}

// adminConns keeps the direct connections that made and dropped runs' schemas, idle, by
// connection string, for the runs after.
var adminConns = &connCache{idle: map[string][]*pgconn.PgConn{}}

// maxIdleAdmin bounds the idle connections kept per connection string: as many as runs at once.
const maxIdleAdmin = 8

type connCache struct {
	mu   sync.Mutex
	idle map[string][]*pgconn.PgConn
}

// get returns an idle connection to url, or a new one.
func (c *connCache) get(ctx context.Context, url string) (*pgconn.PgConn, error) {
	c.mu.Lock()
	for n := len(c.idle[url]); n > 0; n = len(c.idle[url]) {
		conn := c.idle[url][n-1]
		c.idle[url] = c.idle[url][:n-1]
		if !conn.IsClosed() && conn.TxStatus() == 'I' {
			c.mu.Unlock()
			return conn, nil
		}
		conn.Close(ctx)
	}
	c.mu.Unlock()
	return pgconn.Connect(ctx, url)
}

// put keeps conn, idle and out of any transaction, for the next get of url.
func (c *connCache) put(url string, conn *pgconn.PgConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn.IsClosed() || len(c.idle[url]) >= maxIdleAdmin {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
		return
	}
	c.idle[url] = append(c.idle[url], conn)
}
