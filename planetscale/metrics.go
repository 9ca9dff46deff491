package planetscale

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the rotators of every PlanetScale database do, labelled by Slipstream's
// database name and by credential ("primary" or "replica"). No label or value holds a secret.
type Metrics struct {
	rotations    *prometheus.CounterVec
	mintFailures *prometheus.CounterVec
	deleted      *prometheus.CounterVec
	failing      *prometheus.GaugeVec
	expiry       *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"db", "credential"}
	m := &Metrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_planetscale_rotations_total",
			Help: "Credentials minted to replace one about to expire.",
		}, labels),
		mintFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_planetscale_mint_failures_total",
			Help: "Failed attempts to mint a credential through the PlanetScale API.",
		}, labels),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipstream_planetscale_credentials_deleted_total",
			Help: "Minted credentials deleted, once replaced and no origin connection used them any more, or at shutdown.",
		}, labels),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipstream_planetscale_renewal_failing",
			Help: "1 while the credential is due for replacement and the PlanetScale API has not minted the next one.",
		}, labels),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipstream_planetscale_credential_expiry_timestamp_seconds",
			Help: "When the credential new origin connections use expires, in Unix seconds.",
		}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.rotations, m.mintFailures, m.deleted, m.failing, m.expiry)
	}
	return m
}

// credMetrics are one credential's children of Metrics.
type credMetrics struct {
	rotations, mintFailures, deleted prometheus.Counter
	failing, expiry                  prometheus.Gauge
}

func (m *Metrics) forCredential(db, credential string) credMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	return credMetrics{
		rotations:    m.rotations.WithLabelValues(db, credential),
		mintFailures: m.mintFailures.WithLabelValues(db, credential),
		deleted:      m.deleted.WithLabelValues(db, credential),
		failing:      m.failing.WithLabelValues(db, credential),
		expiry:       m.expiry.WithLabelValues(db, credential),
	}
}
