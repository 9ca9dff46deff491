package admin

import (
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports SHOW POOLS at each scrape: one series per pool, so per database and
// user (a role's pool of an any_role database too), with the pools a reload opened and those
// created through the REST APIs. The labels are bounded by the pools the process serves.
type poolCollector struct {
	c                      *Console
	conns, clients, limits *prometheus.Desc
}

// Collector returns the Prometheus collector of the console's pools:
// slipstream_pool_connections{db,user,state} (in_use, idle: origin connections),
// slipstream_pool_clients{db,user,state} (active, waiting) and
// slipstream_pool_max_connections{db,user}.
func (c *Console) Collector() prometheus.Collector {
	labels := []string{"db", "user"}
	return &poolCollector{c: c,
		conns: prometheus.NewDesc("slipstream_pool_connections",
			"Origin connections of each pool (database and user, as SHOW POOLS), by state.", append(labels, "state"), nil),
		clients: prometheus.NewDesc("slipstream_pool_clients",
			"Client sessions of each pool (database and user, as SHOW POOLS): active, or waiting for a connection.",
			append(labels, "state"), nil),
		limits: prometheus.NewDesc("slipstream_pool_max_connections",
			"The most origin connections each pool (database and user, as SHOW POOLS) opens.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (pc *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pc.conns
	ch <- pc.clients
	ch <- pc.limits
}

// poolFigures are one series' figures; pools sharing a name and user (a PostgreSQL and a MySQL
// database of one name) add up.
type poolFigures struct{ inUse, idle, active, waiting, max int }

// Collect implements prometheus.Collector.
func (pc *poolCollector) Collect(ch chan<- prometheus.Metric) {
	pools := pc.c.entries()
	clients := pc.c.clientsOf(pools)
	var keys [][2]string
	figures := map[[2]string]*poolFigures{}
	for _, p := range pools {
		key := [2]string{p.Name, p.user()}
		f := figures[key]
		if f == nil {
			f = &poolFigures{}
			figures[key] = f
			keys = append(keys, key)
		}
		st := p.Pool.Stats()
		f.inUse += st.InUse
		f.idle += st.Idle
		f.waiting += st.Waiting
		f.active += max(clients.of(p, pools)-st.Waiting, 0)
		f.max += p.Pool.MaxConns()
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, k := range keys {
		f := figures[k]
		gauge(pc.conns, f.inUse, k[0], k[1], "in_use")
		gauge(pc.conns, f.idle, k[0], k[1], "idle")
		gauge(pc.clients, f.active, k[0], k[1], "active")
		gauge(pc.clients, f.waiting, k[0], k[1], "waiting")
		gauge(pc.limits, f.max, k[0], k[1])
	}
}
