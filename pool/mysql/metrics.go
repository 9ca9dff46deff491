package mysqlpool

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slipstream-proxy/slipstream/pool"
)

// Metrics are the MySQL pools' Prometheus metrics, shared by the pools of every database and
// labelled by database. They are package pool's slot metrics under slipstream_mysql_* names, so
// that both register with one registry.
type Metrics struct {
	slots *pool.SlotMetrics
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{slots: pool.NewSlotMetrics(reg, "slipstream_mysql_", pool.SlotMetricsHelp{
		Wait:          "Time a MySQL session waited in the queue for an origin connection.",
		QueueTimeouts: "MySQL commands refused after waiting the whole queue timeout.",
		ConnectErrors: "Failed attempts to open a MySQL origin connection.",
		BrokenConns:   "MySQL origin connections dropped because they broke while in use, or because the origin closed them while idle.",
		PinnedTotal:   "MySQL sessions pinned to an origin connection, by the feature that pinned them.",
		Resent:        "MySQL commands sent again on another origin connection because the origin had closed the one they went out on before reading them.",
		Conns:         "MySQL origin connections by state (in_use includes connections being dialled).",
	})}
}
