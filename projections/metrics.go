package projections

import "github.com/prometheus/client_golang/prometheus"

type viewMetrics struct {
	retentionDeleted      prometheus.Counter
	retentionRangeDeletes prometheus.Counter
	retentionPointDeletes prometheus.Counter
}

func newViewMetrics(reg prometheus.Registerer, v *View) *viewMetrics {
	m := &viewMetrics{
		retentionDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_projections_retention_deleted_total",
			Help: "Events deleted by retention (cleanup endpoint and background loop).",
		}),
		retentionRangeDeletes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_projections_retention_range_deletions_total",
			Help: "Range deletions written by retention (the log prefix and its indexes).",
		}),
		retentionPointDeletes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_projections_retention_point_deletions_total",
			Help: "Point deletions written by retention (late events beyond the prefix).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.retentionDeleted, m.retentionRangeDeletes, m.retentionPointDeletes,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "securevision_projections_live_events",
				Help: "Events currently retained.",
			}, func() float64 { return float64(v.Live()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "securevision_projections_recent_events",
				Help: "Events whose ts_ms lies in the last 300 s (as /health reports).",
			}, func() float64 { return float64(v.Recent().Total()) }),
		)
	}
	return m
}
