package admin

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
)

type statsKind int

const (
	statsAll statsKind = iota
	statsTotals
	statsAverages
)

// statsPoint is a database's totals at one moment, for the averages over the period since.
type statsPoint struct {
	at   time.Time
	t    insight.Totals
	wait time.Duration // the pool's queue waits, all told
}

// statsPeriod is how long SHOW STATS' averages are taken over, at least (PgBouncer's
// stats_period is 60 s; a shorter one shows a change sooner).
const statsPeriod = 15 * time.Second

// figures are one database's twelve PgBouncer figures: assignments, transactions, queries,
// bytes in, bytes out, transaction time, query time, wait time (µs), parses at the client,
// parses at the server, binds.
type figures [11]float64

func totalsFigures(p statsPoint) figures {
	t := p.t
	return figures{float64(t.Xacts), float64(t.Xacts), float64(t.Queries), float64(t.Received), float64(t.Sent),
		float64(t.XactTime.Microseconds()), float64(t.QueryTime.Microseconds()), float64(p.wait.Microseconds()),
		float64(t.Parses), float64(t.Parses), float64(t.Binds)}
}

// averages are PgBouncer's: counts and bytes per second, times per transaction or query (µs).
func averages(now, prev statsPoint) figures {
	secs := now.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return figures{}
	}
	a, b := totalsFigures(now), totalsFigures(prev)
	var d figures
	for i := range d {
		d[i] = a[i] - b[i]
	}
	var out figures
	for i := range out {
		out[i] = d[i] / secs
	}
	out[5], out[6] = 0, 0
	if d[1] > 0 {
		out[5] = d[5] / d[1]
	}
	if d[2] > 0 {
		out[6] = d[6] / d[2]
	}
	if d[0] > 0 {
		out[7] = d[7] / d[0]
	}
	return out
}

// stats are SHOW STATS' rows (and its _TOTALS' and _AVERAGES'): one per database's own pool,
// with the totals kept under the name clients use (its database) and the time clients waited
// for its pools (its roles' too: any_role).
func (c *Console) stats(kind statsKind) [][]any {
	now := time.Now()
	pools := c.entries()
	waited := map[string]time.Duration{}
	for _, p := range pools {
		waited[p.Name] += p.Pool.Waited()
	}
	var rows [][]any
	for _, p := range pools {
		if p.User != "" {
			continue // a role's pool: its figures are its database's row's
		}
		var t insight.Totals
		if c.cfg.Insight != nil {
			t, _, _ = c.cfg.Insight.DBTotals(p.Protocol, p.Database)
		}
		cur := statsPoint{at: now, t: t, wait: waited[p.Name]}
		c.mu.Lock()
		prev, ok := c.prev[p.Name]
		if !ok {
			prev = statsPoint{at: c.start(), t: insight.Totals{}}
		}
		if now.Sub(prev.at) >= statsPeriod || !ok {
			c.prev[p.Name] = cur
		}
		c.mu.Unlock()
		tot, avg := totalsFigures(cur), averages(cur, prev)
		row := []any{p.Name}
		switch kind {
		case statsAll:
			row = appendFigures(appendFigures(row, tot), avg)
		case statsTotals:
			row = appendFigures(row, tot)
		case statsAverages:
			row = appendFigures(row, avg)
		}
		rows = append(rows, row)
	}
	return rows
}

func (c *Console) start() time.Time {
	if c.cfg.Insight != nil {
		return c.cfg.Insight.Since()
	}
	return time.Now()
}

func appendFigures(row []any, f figures) []any {
	for _, v := range f {
		row = append(row, float64(int64(v))) // PgBouncer's numeric columns hold integers
	}
	return row
}

// totals is SHOW TOTALS: every database's figures summed, as name/value rows.
func (c *Console) totals() [][]any {
	var sum, avg figures
	for _, r := range c.stats(statsAll) {
		for i := range sum {
			sum[i] += r[1+i].(float64)
			avg[i] += r[12+i].(float64)
		}
	}
	names := []string{"server_assignment_count", "xact_count", "query_count", "client_bytes", "server_bytes",
		"xact_time", "query_time", "wait_time", "ps_client_parse_count", "ps_server_parse_count", "ps_bind_count"}
	var rows [][]any
	for i, n := range names {
		rows = append(rows, []any{"total_" + n, sum[i]})
	}
	for i, n := range names {
		rows = append(rows, []any{"avg_" + n, avg[i]})
	}
	return rows
}

// cacheRows is SHOW CACHE: per database, what the cache holds and did, and why units were not
// cached, by Hyperdrive's status names.
func (c *Console) cacheRows() [][]any {
	var byDB map[string]cache.DBStats
	if c.cfg.Cache != nil {
		byDB = c.cfg.Cache.DBStats()
	}
	var rows [][]any
	seen := map[string]bool{}
	for _, p := range c.entries() {
		if seen[p.Database] {
			continue
		}
		seen[p.Database] = true
		// Both protocols' units of a database served over both (an embedded one).
		statuses := map[cache.Status]uint64{}
		if c.cfg.Insight != nil {
			for _, protocol := range []string{insight.Postgres, insight.MySQL} {
				t, _, _ := c.cfg.Insight.DBTotals(protocol, p.Database)
				for st, n := range t.Statuses {
					statuses[st] += n
				}
			}
		}
		d := byDB[p.Database]
		row := []any{p.Database, d.Entries, d.Bytes, int64(statuses[cache.Hit]), int64(statuses[cache.Miss]),
			int64(statuses[cache.Stale]), d.Coalesced, d.Invalidations}
		for _, st := range notCachedStatuses {
			row = append(row, int64(statuses[st]))
		}
		rows = append(rows, row)
	}
	return rows
}

// queries is SHOW QUERIES: the top shapes by total time.
func (c *Console) queries(limit int) [][]any {
	var rows [][]any
	if c.cfg.Insight == nil {
		return rows
	}
	for _, s := range c.cfg.Insight.Shapes(limit) {
		rows = append(rows, []any{s.Fingerprint, s.Database, s.Query, int64(s.Calls), round3(s.TotalMs), round3(s.P50Ms),
			round3(s.P99Ms), s.Rows, round3(s.HitRatio), s.NotCached, int64(s.Errors)})
	}
	return rows
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
