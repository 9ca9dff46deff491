package changes

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// postgres streams committed changes with the pgoutput plugin from a named slot: the slot keeps
// the position across reconnections, so nothing committed while the stream was down is missed
// (caching is suspended meanwhile in any case).
type postgres struct {
	cfg  Config
	pc   *pgconn.Config
	conn *pgconn.PgConn
	// target is where the origin's WAL was when the stream connected: caught up once the
	// walsender has sent up to it.
	target pglogrepl.LSN
	// applied is the WAL position processed: the end of the last transaction invalidated,
	// or the walsender's position in a keepalive between transactions, once everything
	// before it is invalidated (health.reached). It is confirmed to the slot.
	applied atomic.Uint64
	// probePC and probeConn are the probe's ordinary connection (no replication).
	probePC   *pgconn.Config
	probeConn *pgconn.PgConn
	// sent and received are the XLogData message being decoded's: when the walsender sent it,
	// and when the stream read it.
	sent, received time.Time
}

// statusEvery is how often the stream confirms its position and asks the walsender for a
// keepalive; silenceLimit is the least time it waits for anything before it counts the
// connection as lost (see silenceOf).
const (
	statusEvery  = time.Second
	silenceLimit = 3 * time.Second
)

// silenceOf is how long cfg's stream waits for anything from the origin before it counts the
// connection as lost: longer than a probe has to be reached, so that the probes, not the
// silence, decide when the database is behind (health.watch suspends it then, whatever the
// connection does). A walsender or binlog dump starved of CPU for a few seconds on a loaded
// origin, with nothing to send, was counted lost at 3 s before: the database was suspended,
// and uncached while the stream reconnected and caught up, with nothing missed.
func silenceOf(cfg Config) time.Duration {
	return max(silenceLimit, max(cfg.MaxLag, minProbeLag)+statusEvery)
}

var slotUnsafe = regexp.MustCompile(`[^a-z0-9_]`)

// DefaultSlot is the replication slot a database's stream uses when Config.Slot is empty.
func DefaultSlot(db string) string {
	return "slipstream_" + slotUnsafe.ReplaceAllString(strings.ToLower(db), "_")
}

func newPostgres(cfg Config) (*postgres, error) {
	pc, err := pgconn.ParseConfig(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("%w: the origin URL does not parse", ErrUnavailable) // the URL holds a password: not quoted
	}
	pc.RuntimeParams["replication"] = "database"
	pc.RuntimeParams["application_name"] = "slipstream changes"
	if cfg.Slot == "" {
		cfg.Slot = DefaultSlot(cfg.DB)
	}
	if cfg.Publication == "" {
		cfg.Publication = "slipstream"
	}
	probePC := pc.Copy()
	probePC.RuntimeParams = map[string]string{"application_name": "slipstream changes probe"}
	return &postgres{cfg: cfg, pc: pc, probePC: probePC}, nil
}

// connect opens the replication connection and checks what the stream needs, creating the
// publication (if allowed) and the slot when they are missing.
func (p *postgres) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, p.pc)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return fmt.Errorf("%w: the origin user lacks the REPLICATION attribute (ALTER ROLE ... REPLICATION)", ErrUnavailable)
		}
		return err
	}
	p.conn = conn
	if err := p.check(ctx); err != nil {
		conn.Close(context.Background())
		return err
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		conn.Close(context.Background())
		return err
	}
	p.target = sys.XLogPos
	p.applied.Store(0)
	args := []string{"proto_version '1'", "publication_names '" + strings.ReplaceAll(p.cfg.Publication, "'", "''") + "'"}
	if err := pglogrepl.StartReplication(ctx, conn, p.cfg.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		conn.Close(context.Background())
		return err
	}
	return nil
}

// check reports ErrUnavailable for what the operator must change, and makes the publication
// and the slot when missing.
func (p *postgres) check(ctx context.Context) error {
	rows, err := p.query(ctx, "SHOW wal_level")
	if err != nil {
		return err
	}
	if len(rows) != 1 || rows[0][0] != "logical" {
		return fmt.Errorf("%w: wal_level is not logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", ErrUnavailable)
	}
	// A publication FOR ALL TABLES names every table the cache may hold, now and later; one
	// that lists tables would leave writes to the others unheard. Slipstream never makes it:
	// publishing a table's updates makes PostgreSQL refuse UPDATE and DELETE on it when it has
	// no replica identity (a primary key, or REPLICA IDENTITY FULL), which the operator decides.
	pub := strings.ReplaceAll(p.cfg.Publication, "'", "''")
	if rows, err = p.query(ctx, "SELECT puballtables, pubupdate AND pubdelete AND pubinsert AND pubtruncate FROM pg_catalog.pg_publication WHERE pubname = '"+pub+"'"); err != nil {
		return err
	}
	if len(rows) == 0 || rows[0][0] != "t" || rows[0][1] != "t" {
		return fmt.Errorf("%w: no publication %s FOR ALL TABLES publishing inserts, updates, deletes and truncates "+
			"(as a superuser: CREATE PUBLICATION %s FOR ALL TABLES; tables without a primary key then need REPLICA IDENTITY FULL for UPDATE and DELETE)",
			ErrUnavailable, p.cfg.Publication, p.cfg.Publication)
	}
	slot := strings.ReplaceAll(p.cfg.Slot, "'", "''")
	if rows, err = p.query(ctx, "SELECT plugin FROM pg_catalog.pg_replication_slots WHERE slot_name = '"+slot+"'"); err != nil {
		return err
	}
	if len(rows) == 0 {
		if _, err := pglogrepl.CreateReplicationSlot(ctx, p.conn, p.cfg.Slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{}); err != nil {
			return fmt.Errorf("create replication slot %s: %w", p.cfg.Slot, err)
		}
		p.cfg.Logger.Info("created a replication slot for the change stream (slipstream pool --drop-slot removes it)", "db", p.cfg.DB, "slot", p.cfg.Slot)
	} else if rows[0][0] != "pgoutput" {
		return fmt.Errorf("%w: replication slot %s uses plugin %s, not pgoutput", ErrUnavailable, p.cfg.Slot, rows[0][0])
	}
	return nil
}

// query runs one simple query on the replication connection and returns its text rows.
func (p *postgres) query(ctx context.Context, sql string) ([][]string, error) {
	res, err := p.conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, r := range res {
		for _, row := range r.Rows {
			vals := make([]string, len(row))
			for i, v := range row {
				vals[i] = string(v)
			}
			rows = append(rows, vals)
		}
	}
	return rows, nil
}

func (p *postgres) close() {
	for _, c := range []**pgconn.PgConn{&p.conn, &p.probeConn} {
		if *c != nil {
			(*c).Close(context.Background())
			*c = nil
		}
	}
}

// advance records that the stream has processed the WAL up to lsn.
func (p *postgres) advance(lsn pglogrepl.LSN) {
	for {
		old := p.applied.Load()
		if uint64(lsn) <= old || p.applied.CompareAndSwap(old, uint64(lsn)) {
			return
		}
	}
}

// probe reads the origin's WAL position: the bytes from the stream's applied position to
// pg_current_wal_lsn() (the slot's lag, as pg_replication_slots counts it, but to what the
// stream has processed rather than confirmed), and whether the stream has since applied the
// WAL flushed (what the walsender can send) when the probe ran.
func (p *postgres) probe(ctx context.Context) (int64, func() bool, error) {
	if p.probeConn == nil {
		c, err := pgconn.ConnectConfig(ctx, p.probePC)
		if err != nil {
			return 0, nil, err
		}
		p.probeConn = c
	}
	res, err := p.probeConn.Exec(ctx, "SELECT pg_catalog.pg_current_wal_lsn()::text, pg_catalog.pg_current_wal_flush_lsn()::text").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		p.probeConn.Close(context.Background())
		p.probeConn = nil
		return 0, nil, fmt.Errorf("read the WAL position: %w", err)
	}
	row := res[0].Rows[0]
	current, err := pglogrepl.ParseLSN(string(row[0]))
	if err != nil {
		return 0, nil, err
	}
	flushed, err := pglogrepl.ParseLSN(string(row[1]))
	if err != nil {
		return 0, nil, err
	}
	applied := pglogrepl.LSN(p.applied.Load())
	lag := int64(0)
	if current > applied {
		lag = int64(current - applied)
	}
	return lag, func() bool { return pglogrepl.LSN(p.applied.Load()) >= flushed }, nil
}

// stream reads the walsender's messages until the connection fails, falls silent, or ctx
// ends: committed transactions' tables are invalidated in commit order, and the stream counts
// as caught up once the walsender has sent everything up to target.
func (p *postgres) stream(ctx context.Context, h *health) error {
	relations := map[uint32]string{}
	var tx txTables
	lastHeard := time.Now()
	nextStatus := time.Time{}
	for {
		if h.fellBehind() {
			return errBehind
		}
		if now := time.Now(); !now.Before(nextStatus) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, p.conn, pglogrepl.StandbyStatusUpdate{
				WALWritePosition: pglogrepl.LSN(p.applied.Load()), ReplyRequested: true}); err != nil {
				return err
			}
			nextStatus = now.Add(statusEvery)
		}
		rctx, cancel := context.WithDeadline(ctx, nextStatus)
		msg, err := p.conn.ReceiveMessage(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case pgconn.Timeout(err):
			if silence := silenceOf(p.cfg); time.Since(lastHeard) > silence {
				return fmt.Errorf("the walsender sent nothing for %v", silence)
			}
			continue
		case err != nil:
			return err
		}
		lastHeard = time.Now()
		p.received = lastHeard
		if err := p.handle(msg, relations, &tx, h); err != nil {
			return err
		}
	}
}

// handle processes one message from the walsender.
func (p *postgres) handle(msg pgproto3.BackendMessage, relations map[uint32]string, tx *txTables, h *health) error {
	switch msg := msg.(type) {
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("walsender: %s (SQLSTATE %s)", msg.Message, msg.Code)
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return err
			}
			if !tx.open && ka.ServerWALEnd >= p.target {
				// Everything up to the walsender's position is received and processed; a slot
				// that decodes nothing for this publication advances with it too.
				h.reached(func() { p.advance(ka.ServerWALEnd) })
				h.caughtUp()
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return err
			}
			p.sent = xld.ServerTime
			// The position advances at each commit, once invalidated (decode), and with the
			// keepalives between transactions: a message's own start says nothing exact of
			// the WAL processed up to its end.
			if err := p.decode(xld.WALData, relations, tx, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// txTables collects the tables one transaction changed until its commit.
type txTables struct {
	open   bool
	tables []string
	all    bool
}

// decode reads one pgoutput message.
func (p *postgres) decode(data []byte, relations map[uint32]string, tx *txTables, h *health) error {
	m, err := pglogrepl.Parse(data)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		relations[m.RelationID] = m.RelationName
	case *pglogrepl.BeginMessage:
		*tx = txTables{open: true, tables: tx.tables[:0]}
	case *pglogrepl.InsertMessage:
		tx.add(relations, m.RelationID)
	case *pglogrepl.UpdateMessage:
		tx.add(relations, m.RelationID)
	case *pglogrepl.DeleteMessage:
		tx.add(relations, m.RelationID)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			tx.add(relations, id)
		}
	case *pglogrepl.CommitMessage:
		tx.open = false
		if err := h.commitTimed(tx.tables, tx.all, txTimes{committed: m.CommitTime, sent: p.sent, received: p.received}); err != nil {
			return err
		}
		h.reached(func() { p.advance(m.TransactionEndLSN) })
		if m.TransactionEndLSN >= p.target {
			h.caughtUp()
		}
	}
	return nil
}

// add records a change to the relation id; an id the stream has no Relation message for (it
// always sends one first) counts as a change to anything.
func (tx *txTables) add(relations map[uint32]string, id uint32) {
	name, ok := relations[id]
	if !ok {
		tx.all = true
		return
	}
	tx.tables = append(tx.tables, name)
}

// DropSlot drops db's replication slot on the origin (slipstream pool --drop-slot); slot ""
// is DefaultSlot(db). A slot that does not exist is not an error.
func DropSlot(ctx context.Context, origin, db, slot string) error {
	pc, err := pgconn.ParseConfig(origin)
	if err != nil {
		return errors.New("drop slot: the origin URL does not parse")
	}
	if slot == "" {
		slot = DefaultSlot(db)
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", slot, err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = '"+
		strings.ReplaceAll(slot, "'", "''")+"'").ReadAll()
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", slot, err)
	}
	return nil
}
