package mysqlpool

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the MySQL pools' Prometheus metrics, shared by the pools of every database and
// labelled by database. They mirror package pool's under slipstream_mysql_* names, so that both
// register with one registry.
type Metrics struct {
	wait          *prometheus.HistogramVec
	queueTimeouts *prometheus.CounterVec
	connectErrors *prometheus.CounterVec
	brokenConns   *prometheus.CounterVec
	pinnedTotal   *prometheus.CounterVec

	mu    sync.Mutex
	pools []*Pool
	conns *prometheus.Desc
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slipstream_mysql_pool_wait_seconds",
			Help:    "Time a MySQL session waited in the queue for an origin connection.",
			Buckets: []float64{.0001, .001, .01, .1, 1, 10, 60},
		}, []string{"db"}),
		queueTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_mysql_pool_queue_timeouts_total",
			Help: "MySQL commands refused after waiting the whole queue timeout.",
		}, []string{"db"}),
		connectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_mysql_origin_connect_errors_total",
			Help: "Failed attempts to open a MySQL origin connection.",
		}, []string{"db"}),
		brokenConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_mysql_origin_broken_connections_total",
			Help: "MySQL origin connections dropped because they broke while in use.",
		}, []string{"db"}),
		pinnedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_mysql_pinned_sessions_total",
			Help: "MySQL sessions pinned to an origin connection, by the feature that pinned them.",
		}, []string{"db", "reason"}),
		conns: prometheus.NewDesc("slipstream_mysql_origin_connections",
			"MySQL origin connections by state (in_use includes connections being dialled).", []string{"db", "state"}, nil),
	}
	if reg != nil {
		reg.MustRegister(m.wait, m.queueTimeouts, m.connectErrors, m.brokenConns, m.pinnedTotal, m)
	}
	return m
}

// Describe implements prometheus.Collector for the connection gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.conns }

// Collect implements prometheus.Collector for the connection gauges.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	pools := append([]*Pool(nil), m.pools...)
	m.mu.Unlock()
	for _, p := range pools {
		s := p.Stats()
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.InUse), p.cfg.Name, "in_use")
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.Idle), p.cfg.Name, "idle")
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.Waiting), p.cfg.Name, "waiting")
	}
}

// dbMetrics are one database's children of Metrics, resolved once.
type dbMetrics struct {
	m             *Metrics
	db            string
	wait          prometheus.Observer
	queueTimeouts prometheus.Counter
	connectErrors prometheus.Counter
	brokenConns   prometheus.Counter
}

// forDB resolves the metrics of database db; a nil Metrics gives unregistered collectors.
func (m *Metrics) forDB(db string) *dbMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &dbMetrics{
		m:             m,
		db:            db,
		wait:          m.wait.WithLabelValues(db),
		queueTimeouts: m.queueTimeouts.WithLabelValues(db),
		connectErrors: m.connectErrors.WithLabelValues(db),
		brokenConns:   m.brokenConns.WithLabelValues(db),
	}
}

func (d *dbMetrics) register(p *Pool) {
	d.m.mu.Lock()
	d.m.pools = append(d.m.pools, p)
	d.m.mu.Unlock()
}

func (d *dbMetrics) observeWait(t time.Duration) { d.wait.Observe(t.Seconds()) }

func (d *dbMetrics) pin(reason string) { d.m.pinnedTotal.WithLabelValues(d.db, reason).Inc() }
