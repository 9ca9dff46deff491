package changes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// mysqlStream reads the row-based binlog as a replica. It resumes from the GTID set of the
// last transaction it processed (MariaDB always has one; MySQL with gtid_mode ON), else from
// the binlog file and position; caching is suspended while it is down in any case.
type mysqlStream struct {
	cfg                      Config
	addr, user, password, db string
	host                     string
	port                     uint16
	tls                      *tls.Config
	flavor                   string

	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
	gset     gomysql.GTIDSet  // where to resume; nil: from pos
	pos      gomysql.Position // the last position processed
	target   gomysql.Position // the origin's binlog position when the stream connected
	file     string           // the binlog file being read

	appliedMu sync.Mutex
	applied   gomysql.Position // pos, once everything before it is invalidated (health.reached)
	queued    gomysql.Position // the last pos handed to health.reached
	probeConn *client.Conn     // the probe's own connection
}

func newMySQL(cfg Config) (*mysqlStream, error) {
	u, err := url.Parse(cfg.Origin)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: the origin URL does not parse", ErrUnavailable)
	}
	m := &mysqlStream{cfg: cfg, addr: u.Host, host: u.Hostname(), db: strings.TrimPrefix(u.Path, "/")}
	if u.Port() == "" {
		m.addr = net.JoinHostPort(m.host, "3306")
	}
	port, _ := strconv.Atoi(strings.TrimPrefix(m.addr, m.host+":"))
	if _, p, err := net.SplitHostPort(m.addr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	m.port = uint16(port)
	m.user = u.User.Username()
	m.password, _ = u.User.Password()
	switch u.Query().Get("tls") {
	case "true":
		m.tls = &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	case "skip-verify":
		m.tls = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the origin URL asked for it
	}
	if m.cfg.ServerID == 0 {
		m.cfg.ServerID = 1<<20 + rand.Uint32N(1<<30)
	}
	return m, nil
}

// dial opens an ordinary connection to the origin.
func (m *mysqlStream) dial(ctx context.Context) (*client.Conn, error) {
	opts := []client.Option{}
	if m.tls != nil {
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(m.tls); return nil })
	}
	return client.ConnectWithContext(ctx, m.addr, m.user, m.password, "", 10*time.Second, opts...)
}

// connect checks the origin's binlog (on, row-based, readable by the user), learns where it is,
// and starts the dump from where the stream stopped (or from there, the first time).
func (m *mysqlStream) connect(ctx context.Context) error {
	c, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := m.check(c); err != nil {
		return err
	}
	m.syncer = replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: m.cfg.ServerID, Flavor: m.flavor, Host: m.host, Port: m.port, User: m.user, Password: m.password,
		TLSConfig: m.tls, HeartbeatPeriod: time.Second, ReadTimeout: silenceOf(m.cfg), DisableRetrySync: true,
		MaxReconnectAttempts: 1, Logger: discardLogger(),
	})
	if m.gset != nil {
		m.streamer, err = m.syncer.StartSyncGTID(m.gset.Clone())
	} else {
		m.streamer, err = m.syncer.StartSync(m.pos)
	}
	if err != nil {
		m.syncer.Close()
		return err
	}
	return nil
}

// check reads the server's binlog settings and position; what the operator must change is
// ErrUnavailable.
func (m *mysqlStream) check(c *client.Conn) error {
	r, err := c.Execute("SELECT @@version, @@log_bin, @@binlog_format")
	if err != nil || len(r.Values) != 1 {
		return fmt.Errorf("read the binlog settings: %w", err)
	}
	version, _ := r.GetString(0, 0)
	logBin, _ := r.GetInt(0, 1)
	format, _ := r.GetString(0, 2)
	m.flavor = gomysql.MySQLFlavor
	if strings.Contains(strings.ToLower(version), "mariadb") {
		m.flavor = gomysql.MariaDBFlavor
	}
	switch {
	case logBin != 1:
		return fmt.Errorf("%w: the binary log is off (start the server with log_bin and binlog_format=ROW)", ErrUnavailable)
	case !strings.EqualFold(format, "ROW"):
		return fmt.Errorf("%w: binlog_format is %s, and only ROW names every table a statement changed (SET GLOBAL binlog_format = ROW)", ErrUnavailable, format)
	}
	st, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		var me *gomysql.MyError
		if errors.As(err, &me) && (me.Code == 1227 || me.Code == 1142) {
			return fmt.Errorf("%w: the origin user may not read the binlog (GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ...)", ErrUnavailable)
		}
		return err
	}
	if len(st.Values) != 1 {
		return fmt.Errorf("%w: SHOW MASTER STATUS is empty: the binary log is off", ErrUnavailable)
	}
	file, _ := st.GetString(0, 0)
	pos, _ := st.GetUint(0, 1)
	m.target = gomysql.Position{Name: file, Pos: uint32(pos)}
	if m.gset != nil || m.pos.Name != "" {
		return nil // resume where the stream stopped
	}
	m.pos = m.target
	return m.startGTID(c)
}

// startGTID sets the GTID set to start from the first time: MariaDB's gtid_binlog_pos, or
// MySQL's gtid_executed when gtid_mode is ON; else the stream goes by file and position.
func (m *mysqlStream) startGTID(c *client.Conn) error {
	q := "SELECT @@gtid_binlog_pos"
	if m.flavor == gomysql.MySQLFlavor {
		q = "SELECT IF(@@gtid_mode = 'ON', @@gtid_executed, '')"
	}
	r, err := c.Execute(q)
	if err != nil || len(r.Values) != 1 {
		return nil // no GTIDs: file and position
	}
	s, _ := r.GetString(0, 0)
	if s == "" && m.flavor == gomysql.MySQLFlavor {
		return nil
	}
	gset, err := gomysql.ParseGTIDSet(m.flavor, s)
	if err != nil {
		return nil
	}
	m.gset = gset
	return nil
}

func (m *mysqlStream) close() {
	if m.syncer != nil {
		m.syncer.Close()
		m.syncer, m.streamer = nil, nil
	}
	if m.probeConn != nil {
		m.probeConn.Close()
		m.probeConn = nil
	}
}

// probe reads the origin's binlog position (SHOW MASTER STATUS): the bytes from the stream's
// applied position to it, across binlog files (SHOW BINARY LOGS), and whether the stream has
// since applied it.
func (m *mysqlStream) probe(ctx context.Context) (int64, func() bool, error) {
	if m.probeConn == nil {
		c, err := m.dial(ctx)
		if err != nil {
			return 0, nil, err
		}
		m.probeConn = c
	}
	lag, at, err := m.readLag()
	if err != nil {
		m.probeConn.Close()
		m.probeConn = nil
		return 0, nil, err
	}
	return lag, func() bool { return m.appliedPos().Compare(at) >= 0 }, nil
}

func (m *mysqlStream) appliedPos() gomysql.Position {
	m.appliedMu.Lock()
	defer m.appliedMu.Unlock()
	return m.applied
}

// readLag reads the origin's position and counts the binlog bytes from the applied position.
func (m *mysqlStream) readLag() (int64, gomysql.Position, error) {
	st, err := m.probeConn.Execute("SHOW MASTER STATUS")
	if err != nil || len(st.Values) != 1 {
		return 0, gomysql.Position{}, fmt.Errorf("read the binlog position: %w", err)
	}
	file, _ := st.GetString(0, 0)
	pos, _ := st.GetUint(0, 1)
	at := gomysql.Position{Name: file, Pos: uint32(pos)}
	applied := m.appliedPos()
	if applied.Name == "" || applied.Compare(at) >= 0 {
		return 0, at, nil
	}
	if applied.Name == at.Name {
		return int64(at.Pos) - int64(applied.Pos), at, nil
	}
	logs, err := m.probeConn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return 0, at, fmt.Errorf("read the binlog files: %w", err)
	}
	var lag int64
	for i := range logs.Values {
		name, _ := logs.GetString(i, 0)
		size, _ := logs.GetInt(i, 1)
		switch {
		case name == applied.Name:
			lag += size - int64(applied.Pos)
		case name == at.Name:
			lag += int64(at.Pos)
		case gomysql.CompareBinlogFileName(name, applied.Name) > 0 && gomysql.CompareBinlogFileName(name, at.Name) < 0:
			lag += size
		}
	}
	return max(lag, 0), at, nil
}

// stream reads binlog events until the connection fails, falls silent, or ctx ends.
func (m *mysqlStream) stream(ctx context.Context, h *health) error {
	tables := map[uint64]string{}
	var tx txTables
	received := false
	for {
		if h.fellBehind() {
			return errBehind
		}
		ectx, cancel := context.WithTimeout(ctx, silenceOf(m.cfg))
		ev, err := m.streamer.GetEvent(ectx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("the binlog dump sent nothing for %v", silenceOf(m.cfg))
		case err != nil:
			var me *gomysql.MyError
			if !received && errors.As(err, &me) && (me.Code == 1227 || me.Code == 1045) {
				return fmt.Errorf("%w: the origin user may not read the binlog (GRANT REPLICATION SLAVE ON *.* TO ...): %v", ErrUnavailable, err)
			}
			return err
		}
		received = true
		if err := m.handle(ev, tables, &tx, h); err != nil {
			return err
		}
	}
}

// handle processes one binlog event.
func (m *mysqlStream) handle(ev *replication.BinlogEvent, tables map[uint64]string, tx *txTables, h *health) error {
	committed := time.Unix(int64(ev.Header.Timestamp), 0)
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		m.file = string(e.NextLogName)
	case *replication.TableMapEvent:
		tables[e.TableID] = string(e.Table)
	case *replication.RowsEvent:
		tx.open = true
		if name, ok := tables[e.TableID]; ok {
			tx.tables = append(tx.tables, name)
		} else {
			tx.all = true
		}
	case *replication.XIDEvent:
		if e.GSet != nil {
			m.gset = e.GSet.Clone()
		}
		if err := m.commit(tx, committed, h); err != nil {
			return err
		}
	case *replication.QueryEvent:
		if e.GSet != nil {
			m.gset = e.GSet.Clone()
		}
		switch q := strings.TrimSpace(string(e.Query)); {
		case strings.EqualFold(q, "BEGIN"):
			*tx = txTables{open: true, tables: tx.tables[:0]}
		case strings.EqualFold(q, "COMMIT"):
			if err := m.commit(tx, committed, h); err != nil {
				return err
			}
		default: // DDL, which commits on its own: anything may have changed
			tx.all = true
			if err := m.commit(tx, committed, h); err != nil {
				return err
			}
		}
	}
	if ev.Header.LogPos > 0 && m.file != "" {
		m.pos = gomysql.Position{Name: m.file, Pos: ev.Header.LogPos}
		if !tx.open && m.pos != m.queued {
			m.queued = m.pos
			pos := m.pos
			h.reached(func() {
				m.appliedMu.Lock()
				m.applied = pos
				m.appliedMu.Unlock()
			})
		}
	}
	if !tx.open && m.pos.Compare(m.target) >= 0 {
		h.caughtUp()
	}
	return nil
}

// commit invalidates what the transaction changed.
func (m *mysqlStream) commit(tx *txTables, committed time.Time, h *health) error {
	tables, all := tx.tables, tx.all
	*tx = txTables{tables: tx.tables[:0]}
	return h.commit(tables, all, committed)
}
