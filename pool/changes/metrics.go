package changes

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the change streams' Prometheus series; a nil *Metrics records nothing.
type Metrics struct {
	up          *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	lagBytesG   *prometheus.GaugeVec
	invalidate  *prometheus.HistogramVec
	disconnects *prometheus.CounterVec
}

// NewMetrics registers the change-stream series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slipstream_change_stream_up",
			Help: "1 while the database's change stream is current and its reads are cached by it; 0 while it is down, catching up or not used (TTL)."}, []string{"db"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slipstream_change_stream_lag_seconds",
			Help: "How long after its commit the last transaction reached the change stream (MySQL binlog timestamps have whole seconds)."}, []string{"db"}),
		lagBytesG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slipstream_change_stream_lag_bytes",
			Help: "How far the stream is behind the origin, read every second: PostgreSQL pg_current_wal_lsn() minus the WAL position the stream has applied (the slot's lag), MySQL the binlog bytes from the stream's position to SHOW MASTER STATUS."}, []string{"db"}),
		invalidate: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slipstream_invalidation_lag_seconds",
			Help:    "From a transaction's commit at the origin to every cache having dropped the reads it made stale (edges behind a tunnel included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"db"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipstream_change_stream_disconnects_total",
			Help: "Times a change stream was lost or fell more than max_lag behind (caching of the database stopped until it caught up)."}, []string{"db"}),
	}
	reg.MustRegister(m.up, m.lagSeconds, m.lagBytesG, m.invalidate, m.disconnects)
	return m
}

func (m *Metrics) setUp(db string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(db).Set(v)
}

func (m *Metrics) lag(db string, d time.Duration) {
	if m != nil {
		m.lagSeconds.WithLabelValues(db).Set(max(d, 0).Seconds())
	}
}

func (m *Metrics) invalidated(db string, d time.Duration) {
	if m != nil {
		m.invalidate.WithLabelValues(db).Observe(max(d, 0).Seconds())
	}
}

func (m *Metrics) disconnect(db string) {
	if m != nil {
		m.disconnects.WithLabelValues(db).Inc()
	}
}

func (m *Metrics) lagBytes(db string, n int64) {
	if m != nil {
		m.lagBytesG.WithLabelValues(db).Set(float64(max(n, 0)))
	}
}
