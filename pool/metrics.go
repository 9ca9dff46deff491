package pool

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pool's Prometheus metrics, shared by the pools of every database and
// labelled by database: those of its Slots and the PostgreSQL pool's own.
type Metrics struct {
	*SlotMetrics
	queries *prometheus.CounterVec
	pinned  *prometheus.GaugeVec
}

// NewMetrics creates the pool metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SlotMetrics: NewSlotMetrics(reg, "slipstream_", SlotMetricsHelp{
			Wait:          "Time a session waited in the queue for an origin connection.",
			QueueTimeouts: "Sessions refused with SQLSTATE 53300 after waiting the whole queue timeout.",
			ConnectErrors: "Failed attempts to open an origin connection.",
			BrokenConns:   "Origin connections dropped because they broke while in use, or because the origin closed them while idle.",
			PinnedTotal:   "Client sessions pinned to an origin connection, by the feature that pinned them.",
			Resent:        "Units sent again on another origin connection because the origin had closed the one they went out on before reading them.",
			Conns:         "Origin connections by state (in_use includes connections being dialled).",
		}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_queries_total",
			Help: "Queries sent to the origin (simple Query and extended Execute messages).",
		}, []string{"db"}),
		pinned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipstream_pinned_sessions",
			Help: "Client sessions holding one origin connection for their whole life.",
		}, []string{"db"}),
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.pinned)
	}
	return m
}

// dbMetrics are one database's children of Metrics, resolved once so that the hot path does no
// label look-ups.
type dbMetrics struct {
	m       *Metrics
	db      string
	queries prometheus.Counter
	pinned  prometheus.Gauge
}

// forDB resolves the metrics of database db. A nil Metrics gives unregistered collectors, so the
// pool never checks for nil.
func (m *Metrics) forDB(db string) *dbMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &dbMetrics{
		m:       m,
		db:      db,
		queries: m.queries.WithLabelValues(db),
		pinned:  m.pinned.WithLabelValues(db),
	}
}

func (d *dbMetrics) pin(reason string) {
	d.pinned.Inc()
	d.m.Pin(d.db, reason)
}
