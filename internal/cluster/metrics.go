package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node's own: securevision_cluster_*.
type metrics struct {
	reg            prometheus.Registerer
	cs             []prometheus.Collector
	applied        prometheus.Counter
	applySeconds   prometheus.Histogram
	publishSeconds prometheus.Histogram
	publishErrors  prometheus.Counter
	batchRetries   prometheus.Counter
	malformed      prometheus.Counter
	markers        prometheus.Counter
	trimmed        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		reg: reg,
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_applied_events_total",
			Help: "Events this node applied from the stream to its local views."}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securevision_cluster_apply_seconds",
			Help: "Time to apply one run of stream messages to the local store (one batch, one fsync).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securevision_cluster_publish_seconds",
			Help: "Time from publishing a request's batch to the stream's acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_publish_errors_total",
			Help: "Requests the stream did not acknowledge (answered 503)."}),
		batchRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_batch_retries_total",
			Help: "Atomic batches sent again after the server refused them unstored (too many in flight, incomplete)."}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_malformed_messages_total",
			Help: "Stream messages the follower skipped because they do not decode."}),
		markers: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_retention_markers_total",
			Help: "Retention markers this node applied."}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "securevision_cluster_trimmed_late_events_total",
			Help: "Late expired events this node deleted from the stream one by one."}),
	}
	m.cs = []prometheus.Collector{m.applied, m.applySeconds, m.publishSeconds, m.publishErrors, m.batchRetries, m.malformed, m.markers, m.trimmed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "securevision_cluster_lag_events",
			Help: "Stream sequences this node has not applied yet (last id - applied id)."}, func() float64 { return float64(n.Health().Lag) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "securevision_cluster_connected",
			Help: "1 while the node is connected to a NATS server."}, func() float64 {
			if n.nc.IsConnected() {
				return 1
			}
			return 0
		}),
	}
	if reg != nil {
		for _, c := range m.cs {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
