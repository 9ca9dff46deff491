package admin

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// show answers SHOW what.
func (s *consoleSession) show(what string, args []string) error {
	switch what {
	case "HELP":
		s.buf = appendNotice(s.buf, helpText)
		s.buf = appendCommandComplete(s.buf, "SHOW")
	case "VERSION":
		s.result(cols("s", "version"), [][]any{{"PgBouncer " + pgbouncerVersion + " (Slipstream " + s.c.cfg.Version + ")"}})
	case "STATE":
		paused, suspended := s.c.state()
		s.result(cols("ss", "key", "value"), [][]any{{"active", yesNo(!paused && !suspended)},
			{"paused", yesNo(paused && !suspended)}, {"suspended", yesNo(suspended)}})
	case "POOLS":
		s.result(poolCols, s.c.pools())
	case "DATABASES":
		s.result(databaseCols, s.c.databases())
	case "CLIENTS":
		s.result(socketCols, s.c.clients())
	case "SERVERS":
		s.result(socketCols, s.c.servers())
	case "USERS":
		s.result(userCols, s.c.users())
	case "LISTS":
		s.result(cols("si", "list", "items"), s.c.lists())
	case "MEM":
		s.result(cols("siiii", "name", "size", "used", "free", "memtotal"), s.c.mem())
	case "CONFIG":
		s.result(cols("ssss", "key", "value", "default", "changeable"), s.c.config())
	case "STATS":
		s.result(statsCols, s.c.stats(statsAll))
	case "STATS_TOTALS":
		s.result(statsTotalsCols, s.c.stats(statsTotals))
	case "STATS_AVERAGES":
		s.result(statsAveragesCols, s.c.stats(statsAverages))
	case "TOTALS":
		s.result(cols("sN", "name", "value"), s.c.totals())
	case "CACHE":
		s.result(cacheCols, s.c.cacheRows())
	case "QUERIES":
		limit := 20
		if len(args) > 0 {
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return consoleError("SHOW QUERIES takes the number of shapes to show")
			}
			limit = n
		}
		s.result(queryCols, s.c.queries(limit))
	case "TUNNELS":
		var rows [][]any
		if s.c.cfg.Tunnels != nil {
			for _, t := range s.c.cfg.Tunnels() {
				rows = append(rows, []any{t.Pool, t.Region, t.Transport, t.Addr, yesNo(t.Up), float64(t.RTT.Microseconds()) / 1000,
					t.Sessions})
			}
		}
		s.result(cols("sssssNi", "pool", "region", "transport", "addr", "up", "rtt_ms", "sessions"), rows)
	case "PLACEMENT":
		var rows [][]any
		if s.c.cfg.Placement != nil {
			for _, p := range s.c.cfg.Placement() {
				rows = append(rows, []any{p.Database, p.Pool, p.Region, float64(p.RTT.Microseconds()) / 1000})
			}
		}
		s.result(cols("ssss", "database", "pool", "region", "rtt_ms"), rows)
	default:
		return consoleError("invalid command 'SHOW " + strings.ToLower(what) + "', use SHOW HELP;")
	}
	return nil
}

const helpText = `Console usage
	SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION
	SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS|LISTS|MEM|STATE
	SHOW CACHE|QUERIES [n]|TUNNELS|PLACEMENT   (Slipstream's own)
	SET key = arg
	RELOAD
	PAUSE [<db>]
	RESUME [<db>]
	DISABLE <db>
	ENABLE <db>
	RECONNECT [<db>]
	KILL [<db>]
	KILL_CLIENT <client_id>
	SUSPEND
	SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS]
	WAIT_CLOSE [<db>]`

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// state is SHOW STATE's: paused when every pool is, suspended after SUSPEND.
func (c *Console) state() (paused, suspended bool) {
	c.mu.Lock()
	suspended = c.suspended
	c.mu.Unlock()
	pools := c.entries()
	paused = len(pools) > 0
	for _, p := range pools {
		paused = paused && p.Pool.Paused()
	}
	return paused, suspended
}

// PgBouncer 1.24's columns (src/admin.c, src/stats.c).
var (
	poolCols = cols("ssiiiiiiiiiiiiiss", "database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
		"cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used",
		"sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts")
	databaseCols = cols("ssissiiiissiiiiii", "name", "host", "port", "database", "force_user", "pool_size",
		"min_pool_size", "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts", "max_connections",
		"current_connections", "max_client_connections", "current_client_connections", "paused", "disabled")
	socketCols = cols("ssssssisiTTiiississii", "type", "user", "database", "replication", "state", "addr", "port",
		"local_addr", "local_port", "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link",
		"remote_pid", "tls", "application_name", "prepared_statements", "id")
	userCols = cols("ssssiiii", "name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
		"current_connections", "max_user_client_connections", "current_client_connections")
	statsCols = cols("sNNNNNNNNNNNNNNNNNNNNNN", "database", "total_server_assignment_count", "total_xact_count",
		"total_query_count", "total_received", "total_sent", "total_xact_time", "total_query_time", "total_wait_time",
		"total_client_parse_count", "total_server_parse_count", "total_bind_count", "avg_server_assignment_count",
		"avg_xact_count", "avg_query_count", "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time",
		"avg_wait_time", "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count")
	statsTotalsCols = cols("sNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
		"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
		"server_parse_count", "bind_count")
	statsAveragesCols = cols("sNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
		"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time", "avg_client_parse_count",
		"avg_server_parse_count", "avg_bind_count")
	cacheCols = cols("sqqqqqqq"+strings.Repeat("q", len(notCachedStatuses)),
		append([]string{"database", "entries", "bytes", "hits", "misses", "stale_hits", "coalesced", "invalidations"},
			statusNames(notCachedStatuses)...)...)
	queryCols = cols("sssqNNNqNsq", "fingerprint", "database", "query", "calls", "total_ms", "p50_ms", "p99_ms",
		"rows", "hit_ratio", "not_cached", "errors")
)

// notCachedStatuses are the reasons a unit was not cached, Hyperdrive's names.
var notCachedStatuses = []cache.Status{cache.Uncacheable, cache.Volatile, cache.Transaction, cache.MultipleStatements,
	cache.NotAQuery, cache.OversizedResult, cache.ParseError, cache.Disabled}

func statusNames(sts []cache.Status) []string {
	out := make([]string, len(sts))
	for i, s := range sts {
		out[i] = string(s)
	}
	return out
}

// clientCounts are the edge's client sessions, counted by pool name and by pool name and user.
type clientCounts struct {
	byPool map[string]int
	byUser map[[2]string]int
}

// clientsOf counts the edge's client sessions.
func (c *Console) clientsOf(pools []PoolEntry) clientCounts {
	n := clientCounts{byPool: map[string]int{}, byUser: map[[2]string]int{}}
	if c.edge != nil {
		for _, ci := range c.edge.Clients() {
			key := ci.Database
			if ci.Protocol == proxy.ProtocolMySQL {
				key = poolNameOf(pools, ci.Database, ci.Protocol)
			}
			n.byPool[key]++
			n.byUser[[2]string{key, ci.User}]++
		}
	}
	return n
}

// of returns the clients of pool p: a role's pool has its role's; a database's own pool the
// others of the database.
func (n clientCounts) of(p PoolEntry, pools []PoolEntry) int {
	if p.User != "" {
		return n.byUser[[2]string{p.Name, p.User}]
	}
	total := n.byPool[p.Name]
	for _, r := range pools {
		if r.Name == p.Name && r.User != "" {
			total -= n.byUser[[2]string{r.Name, r.User}]
		}
	}
	return max(total, 0)
}

// poolNameOf returns the pool name of database db served over protocol.
func poolNameOf(pools []PoolEntry, db, protocol string) string {
	for _, p := range pools {
		if p.Database == db && p.Protocol == protocol {
			return p.Name
		}
	}
	return db
}

// pools are SHOW POOLS' rows: one per pool, so one per database and user.
func (c *Console) pools() [][]any {
	pools := c.entries()
	clients := c.clientsOf(pools)
	var rows [][]any
	for _, p := range pools {
		st := p.Pool.Stats()
		active := max(clients.of(p, pools)-st.Waiting, 0)
		rows = append(rows, []any{p.Name, p.user(), active, st.Waiting, 0, 0, st.InUse, 0, 0, st.Idle, 0, 0, 0,
			0, 0, "transaction", null{}})
	}
	return rows
}

// databases are SHOW DATABASES' rows: one per database's own pool, whose connections count
// its roles' pools' too (any_role).
func (c *Console) databases() [][]any {
	pools := c.entries()
	clients := c.clientsOf(pools)
	conns := map[string]int{}
	for _, p := range pools {
		st := p.Pool.Stats()
		conns[p.Name] += st.InUse + st.Idle
	}
	var rows [][]any
	for _, p := range pools {
		if p.User != "" {
			continue
		}
		oi := p.Pool.OriginInfo()
		host := any(oi.Host)
		if oi.Host == "" {
			host = null{}
		}
		disabled := c.edge != nil && c.edge.Disabled(p.Database)
		rows = append(rows, []any{p.Name, host, oi.Port, oi.Database, oi.User, p.Pool.MaxConns(), 0, 0, 0,
			"transaction", null{}, p.Pool.MaxConns(), conns[p.Name], 0, clients.byPool[p.Name], p.Pool.Paused(), disabled})
	}
	return rows
}

// clients are SHOW CLIENTS' rows: every client session, PostgreSQL's and MySQL's.
func (c *Console) clients() [][]any {
	var rows [][]any
	if c.edge == nil {
		return rows
	}
	now := time.Now()
	pools := c.entries()
	for _, ci := range c.edge.Clients() {
		addr, port := hostPort(ci.Addr)
		laddr, lport := hostPort(ci.LocalAddr)
		tls := ""
		if ci.TLS {
			tls = "TLS"
		}
		var wait time.Duration
		if ci.Busy && !ci.RequestTime.IsZero() {
			wait = now.Sub(ci.RequestTime)
		}
		db := ci.Database
		if ci.Protocol == proxy.ProtocolMySQL {
			db = poolNameOf(pools, ci.Database, ci.Protocol)
		}
		rows = append(rows, []any{"C", ci.User, db, "none", "active", addr, port, laddr, lport, ci.ConnectTime,
			ci.RequestTime, int(wait / time.Second), int(wait % time.Second / time.Microsecond), 0,
			fmt.Sprintf("0x%x", ci.ID), "", 0, tls, ci.ApplicationName, ci.PreparedStatements, int64(ci.ID)})
	}
	return rows
}

// servers are SHOW SERVERS' rows: each pool's origin connections, leased ones "active".
func (c *Console) servers() [][]any {
	var rows [][]any
	id := int64(0)
	for _, p := range c.entries() {
		oi := p.Pool.OriginInfo()
		for _, sc := range p.Pool.Servers() {
			id++
			state := "active"
			if sc.Idle {
				state = "idle"
			}
			rows = append(rows, []any{"S", p.user(), p.Name, "none", state, oi.Host, oi.Port, "", 0, sc.Created,
				sc.IdleSince, 0, 0, 0, fmt.Sprintf("0x%x", id), "", 0, "", "slipstream", 0, id})
		}
	}
	return rows
}

func (c *Console) users() [][]any {
	conns := map[string]int{}
	var names []string
	add := func(u string) {
		if !slices.Contains(names, u) {
			names = append(names, u)
		}
	}
	for _, p := range c.entries() {
		u := p.user()
		add(u)
		st := p.Pool.Stats()
		conns[u] += st.InUse + st.Idle
	}
	clientConns := map[string]int{}
	if c.edge != nil {
		for _, ci := range c.edge.Clients() {
			add(ci.User)
			clientConns[ci.User]++
		}
	}
	for _, u := range append(slices.Clone(c.cfg.AdminUsers), c.cfg.StatsUsers...) {
		add(u)
	}
	var rows [][]any
	for _, u := range names {
		rows = append(rows, []any{u, "", "", null{}, 0, conns[u], 0, clientConns[u]})
	}
	return rows
}

func (c *Console) lists() [][]any {
	servers, databases := 0, 0
	pools := c.entries()
	for _, p := range pools {
		st := p.Pool.Stats()
		servers += st.InUse + st.Idle
		if p.User == "" {
			databases++
		}
	}
	clients := 0
	if c.edge != nil {
		clients = len(c.edge.Clients())
	}
	return [][]any{{"databases", databases}, {"users", len(c.users())}, {"peers", 0}, {"pools", len(pools)},
		{"peer_pools", 0}, {"free_clients", 0}, {"used_clients", clients}, {"login_clients", 0}, {"free_servers", 0},
		{"used_servers", servers}, {"dns_names", 0}, {"dns_zones", 0}, {"dns_queries", 0}, {"dns_pending", 0}}
}

// mem is SHOW MEM: the Go heap's figures, then the result cache's, in PgBouncer's columns.
func (c *Console) mem() [][]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rows := [][]any{{"go_heap", 1, clampInt(ms.HeapInuse), clampInt(ms.HeapIdle - ms.HeapReleased), clampInt(ms.HeapSys)}}
	if c.cfg.Cache != nil {
		var entries, bytes int64
		for _, d := range c.cfg.Cache.DBStats() {
			entries += d.Entries
			bytes += d.Bytes
		}
		size := 0
		if entries > 0 {
			size = int(bytes / entries)
		}
		rows = append(rows, []any{"result_cache", size, int(entries), 0, clampInt(uint64(bytes))})
	}
	return rows
}

// clampInt fits n into an int4 column.
func clampInt(n uint64) int { return int(min(n, 1<<31-1)) }

func hostPort(a net.Addr) (string, int) {
	if a == nil {
		return "", 0
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String(), ta.Port
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}
