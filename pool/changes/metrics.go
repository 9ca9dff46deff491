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
	stages      *prometheus.HistogramVec
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
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slipstream_change_stream_delay_seconds",
			Help: "Where a transaction's invalidation lag goes, by stage: origin, from its commit until the origin sent it (PostgreSQL's walsender; " +
				"not measured for MySQL, whose binlog has whole seconds); receive, from then until the stream read it; apply, from then until every cache dropped its reads.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"db", "stage"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipstream_change_stream_disconnects_total",
			Help: "Times a change stream was lost or fell more than max_lag behind (caching of the database stopped until it caught up)."}, []string{"db"}),
	}
	reg.MustRegister(m.up, m.lagSeconds, m.lagBytesG, m.invalidate, m.stages, m.disconnects)
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

// invalidated records a transaction's invalidation, done at done: its whole lag, and each stage.
func (m *Metrics) invalidated(db string, at txTimes, done time.Time) {
	if m == nil {
		return
	}
	m.invalidate.WithLabelValues(db).Observe(max(done.Sub(at.committed), 0).Seconds())
	if !at.sent.IsZero() {
		m.stages.WithLabelValues(db, "origin").Observe(max(at.sent.Sub(at.committed), 0).Seconds())
		m.stages.WithLabelValues(db, "receive").Observe(max(at.received.Sub(at.sent), 0).Seconds())
	}
	m.stages.WithLabelValues(db, "apply").Observe(max(done.Sub(at.received), 0).Seconds())
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
