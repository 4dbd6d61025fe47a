package wsfanout

import "github.com/prometheus/client_golang/prometheus"

// Disconnect reasons (label values of disconnects_total).
const (
	reasonClientClosed = "client_closed"
	reasonTooSlow      = "too_slow"
	reasonWriteError   = "write_error"
	reasonReadError    = "read_error"
	reasonTooLarge     = "message_too_large"
	reasonShutdown     = "shutdown"
	reasonDisabled     = "disabled"
	reasonLogError     = "log_error"
	reasonPanic        = "panic"
)

// Refusal reasons (label values of refused_total).
const (
	refusedMaxClients = "max_clients"
	refusedShutdown   = "shutting_down"
	refusedBadRequest = "bad_request"
)

type hubMetrics struct {
	clients       prometheus.GaugeFunc
	sent          prometheus.Counter
	logReads      prometheus.Counter
	logReadEvents prometheus.Counter
	overflows     prometheus.Counter
	droppedReply  prometheus.Counter
	panics        prometheus.Counter
	disconnects   *prometheus.CounterVec
	refused       *prometheus.CounterVec
	lag           prometheus.Histogram
}

// newHubMetrics registers the hub's metrics; the clients gauge reads
// open, the count /health reports, so the two cannot disagree.
func newHubMetrics(reg prometheus.Registerer, open func() int64) *hubMetrics {
	m := &hubMetrics{
		clients: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_wsfanout_clients",
			Help: "Open /stream connections.",
		}, func() float64 { return float64(open()) }),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_messages_sent_total",
			Help: "Event messages written to stream clients.",
		}),
		logReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_log_reads_total",
			Help: "Catch-up chunks read from the log (replay and lagging clients).",
		}),
		logReadEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_log_read_events_total",
			Help: "Records read from the log by catch-up.",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_queue_overflows_total",
			Help: "Client queues dropped on overflow; the client is then fed from the log.",
		}),
		droppedReply: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_dropped_replies_total",
			Help: "Pongs and replies dropped because the client's reply queue was full.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_wsfanout_panics_total",
			Help: "Panics recovered in a stream connection's goroutines; each closed its connection.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_wsfanout_disconnects_total",
			Help: "Stream connections ended, by reason.",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_wsfanout_refused_total",
			Help: "Stream connections refused before the upgrade, by reason.",
		}, []string{"reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securevision_wsfanout_delivery_lag_seconds",
			Help:    "Age (now - created_at) of the newest event of each socket write.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60, 600, 3600},
		}),
	}
	for _, r := range []string{reasonClientClosed, reasonTooSlow, reasonWriteError, reasonReadError, reasonTooLarge, reasonShutdown, reasonDisabled, reasonLogError, reasonPanic} {
		m.disconnects.WithLabelValues(r)
	}
	for _, r := range []string{refusedMaxClients, refusedShutdown, refusedBadRequest} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.sent, m.logReads, m.logReadEvents, m.overflows, m.droppedReply, m.panics, m.disconnects, m.refused, m.lag)
	}
	return m
}
