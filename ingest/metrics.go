package ingest

import "github.com/prometheus/client_golang/prometheus"

type ingestMetrics struct {
	appended *prometheus.CounterVec
	rejected *prometheus.CounterVec
	items    prometheus.Histogram
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	m := &ingestMetrics{
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_ingest_appended_events_total",
			Help: "Events durably appended, by type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_ingest_rejected_requests_total",
			Help: "Append requests refused, by reason (invalid, too_large, store).",
		}, []string{"reason"}),
		items: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securevision_ingest_request_events",
			Help:    "Events per append request.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
	}
	for _, t := range []string{TypeFace, TypePlate} {
		m.appended.WithLabelValues(t)
	}
	for _, r := range []string{"invalid", "too_large", "store"} {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.appended, m.rejected, m.items)
	}
	return m
}

// CountRejected lets the HTTP layer count decode-time refusals.
func (s *Service) CountRejected(reason string) { s.m.rejected.WithLabelValues(reason).Inc() }
