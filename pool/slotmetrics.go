package pool

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SlotMetrics are the Prometheus metrics of Slots, shared by the pools of every database of one
// protocol and labelled by database.
type SlotMetrics struct {
	wait          *prometheus.HistogramVec
	queueTimeouts *prometheus.CounterVec
	connectErrors *prometheus.CounterVec
	brokenConns   *prometheus.CounterVec
	pinnedTotal   *prometheus.CounterVec
	resent        *prometheus.CounterVec

	mu    sync.Mutex
	slots []dbStats
	conns *prometheus.Desc
}

// SlotMetricsHelp is the help text of each of one protocol's SlotMetrics.
type SlotMetricsHelp struct {
	Wait, QueueTimeouts, ConnectErrors, BrokenConns, PinnedTotal, Resent, Conns string
}

// dbStats is one database's Slots, for the connection gauges.
type dbStats struct {
	db string
	s  interface{ Stats() Stats }
}

// NewSlotMetrics creates the metrics of one protocol's Slots, named prefix+"pool_wait_seconds"
// and so on, and registers them with reg (nil: not registered).
func NewSlotMetrics(reg prometheus.Registerer, prefix string, help SlotMetricsHelp) *SlotMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + name, Help: help}, labels)
	}
	m := &SlotMetrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "pool_wait_seconds",
			Help:    help.Wait,
			Buckets: []float64{.0001, .001, .01, .1, 1, 10, 60},
		}, []string{"db"}),
		queueTimeouts: counter("pool_queue_timeouts_total", help.QueueTimeouts, "db"),
		connectErrors: counter("origin_connect_errors_total", help.ConnectErrors, "db"),
		brokenConns:   counter("origin_broken_connections_total", help.BrokenConns, "db"),
		pinnedTotal:   counter("pinned_sessions_total", help.PinnedTotal, "db", "reason"),
		resent:        counter("origin_units_resent_total", help.Resent, "db"),
		conns:         prometheus.NewDesc(prefix+"origin_connections", help.Conns, []string{"db", "state"}, nil),
	}
	if reg != nil {
		reg.MustRegister(m.wait, m.queueTimeouts, m.connectErrors, m.brokenConns, m.pinnedTotal, m.resent, m)
	}
	return m
}

// Describe implements prometheus.Collector for the connection gauges.
func (m *SlotMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.conns }

// Collect implements prometheus.Collector for the connection gauges.
func (m *SlotMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	slots := append([]dbStats(nil), m.slots...)
	m.mu.Unlock()
	// A database may have more than one pool: a reload opens a new one when its origin
	// changed, and the old one serves its sessions until they end. Their figures add up,
	// one series per database (two would fail the scrape).
	var dbs []string
	sums := map[string]*Stats{}
	for _, d := range slots {
		s := d.s.Stats()
		sum := sums[d.db]
		if sum == nil {
			sum = &Stats{}
			sums[d.db] = sum
			dbs = append(dbs, d.db)
		}
		sum.InUse, sum.Idle, sum.Waiting = sum.InUse+s.InUse, sum.Idle+s.Idle, sum.Waiting+s.Waiting
	}
	for _, db := range dbs {
		s := sums[db]
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.InUse), db, "in_use")
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.Idle), db, "idle")
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(s.Waiting), db, "waiting")
	}
}

// Pin counts a session of database db pinned to its origin connection by reason.
func (m *SlotMetrics) Pin(db, reason string) { m.pinnedTotal.WithLabelValues(db, reason).Inc() }

// Resent counts a unit of database db sent again on another origin connection, because the
// origin closed the one it went out on before reading it.
func (m *SlotMetrics) Resent(db string) { m.resent.WithLabelValues(db).Inc() }

// slotsMetrics are one database's children of SlotMetrics, resolved once so that the hot path
// does no label look-ups.
type slotsMetrics struct {
	m             *SlotMetrics
	wait          prometheus.Observer
	queueTimeouts prometheus.Counter
	connectErrors prometheus.Counter
	brokenConns   prometheus.Counter
}

// forDB resolves the metrics of database db. A nil SlotMetrics gives unregistered collectors, so
// Slots never checks for nil.
func (m *SlotMetrics) forDB(db string) *slotsMetrics {
	if m == nil {
		m = NewSlotMetrics(nil, "", SlotMetricsHelp{})
	}
	return &slotsMetrics{
		m:             m,
		wait:          m.wait.WithLabelValues(db),
		queueTimeouts: m.queueTimeouts.WithLabelValues(db),
		connectErrors: m.connectErrors.WithLabelValues(db),
		brokenConns:   m.brokenConns.WithLabelValues(db),
	}
}

func (d *slotsMetrics) register(db string, s interface{ Stats() Stats }) {
	d.m.mu.Lock()
	d.m.slots = append(d.m.slots, dbStats{db, s})
	d.m.mu.Unlock()
}

func (d *slotsMetrics) observeWait(t time.Duration) { d.wait.Observe(t.Seconds()) }
