package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Metrics are the edge's Prometheus metrics.
type Metrics struct {
	clients   *prometheus.GaugeVec
	sessions  *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	cancels   *prometheus.CounterVec
	setupTime prometheus.Histogram
	cacheQ    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	logins    *prometheus.CounterVec // failed logins (authguard.go)
}

// NewMetrics creates the edge metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipstream_client_connections",
			Help: "Client sessions open now, by database.",
		}, []string{"db"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_client_sessions_total",
			Help: "Client sessions that completed startup, by database.",
		}, []string{"db"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_client_errors_total",
			Help: "Errors that ended a client session or its startup, by SQLSTATE condition name (PostgreSQL) or error symbol such as ER_ACCESS_DENIED_ERROR (MySQL).",
		}, []string{"condition"}),
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_cancel_requests_total",
			Help: "CancelRequests received, by outcome.",
		}, []string{"outcome"}),
		setupTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipstream_client_setup_seconds",
			Help:    "Time from accepting a client to its first ReadyForQuery.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
	}
	m.cacheQ = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_cache_queries_total",
		Help: "Units of work by cache status (Hyperdrive's: hit, miss, uncacheable, transaction, volatile, ...).",
	}, []string{"db", "status"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_read_retries_total",
		Help: "Reads outside a transaction sent again over another pool after the tunnel failed under them before any answer, by database and outcome (answered, failed).",
	}, []string{"db", "outcome"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_auth_failures_total",
		Help: "Failed client logins (wrong password or unknown user), by whether the answer was slowed down (delayed) because the client's address had failed repeatedly, or not (refused).",
	}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(m.clients, m.sessions, m.refusals, m.cancels, m.setupTime, m.cacheQ, m.retries, m.logins)
	}
	return m
}

func (m *Metrics) refused(e *pgwire.Error) {
	m.refusals.WithLabelValues(e.Code.Name()).Inc()
}

func (m *Metrics) cacheStatus(db string, s cache.Status) {
	m.cacheQ.WithLabelValues(db, string(s)).Inc()
}
