package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Delivery outcomes, the outcome label of deliveries_total.
const (
	outcomeSuccess = "success"    // 2xx: the cursor moved
	outcomeHTTP    = "http_error" // another status (retried)
	outcomeGone    = "gone"       // 410: the webhook is disabled
	outcomeTimeout = "timeout"    // no answer within Options.Timeout (retried)
	outcomeNetwork = "network"    // connect or transfer failed (retried)
	outcomeRefused = "refused"    // the destination address is not allowed (retried)
)

// metrics are the package's Prometheus metrics. Per-webhook series carry
// the label webhook=<id>; there are at most Options.MaxWebhooks of them,
// and a deleted webhook's series go with it. Lag, back-off, state and
// failures are read from the webhooks when scraped (collector), so the
// delivery path only counts.
type metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	coll       *collector
	reg        prometheus.Registerer
}

func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	x := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_webhook_deliveries_total",
			Help: "Delivery attempts by webhook and outcome: success, http_error, gone, timeout, network, refused.",
		}, []string{"webhook", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securevision_webhook_delivery_duration_seconds",
			Help:    "Time from sending a delivery to its answer (or failure), all webhooks.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		coll: &collector{m: m},
		reg:  reg,
	}
	if reg != nil {
		reg.MustRegister(x.deliveries, x.duration, x.coll)
	}
	return x
}

// forget drops a deleted webhook's series.
func (x *metrics) forget(id string) {
	x.deliveries.DeletePartialMatch(prometheus.Labels{"webhook": id})
}

func (x *metrics) unregister() {
	if x.reg != nil {
		x.reg.Unregister(x.deliveries)
		x.reg.Unregister(x.duration)
		x.reg.Unregister(x.coll)
	}
}

var (
	descLag = prometheus.NewDesc("securevision_webhook_lag_events",
		"Events in the log after the webhook's cursor (last id - cursor).", []string{"webhook"}, nil)
	descBackoff = prometheus.NewDesc("securevision_webhook_backoff_seconds",
		"Current retry back-off delay of the webhook (0 when not retrying).", []string{"webhook"}, nil)
	descFailures = prometheus.NewDesc("securevision_webhook_consecutive_failures",
		"Failed attempts since the webhook's last successful delivery.", []string{"webhook"}, nil)
	descState = prometheus.NewDesc("securevision_webhook_state",
		"1 for the webhook's current state: active, retrying (active, waiting out a back-off) or disabled.",
		[]string{"webhook", "state"}, nil)
	descSkipped = prometheus.NewDesc("securevision_webhook_skipped_events_total",
		"Event ids retention deleted before the webhook reached them.", []string{"webhook"}, nil)
	descCount = prometheus.NewDesc("securevision_webhook_webhooks",
		"Webhooks configured.", nil, nil)
)

// collector reads the per-webhook gauges from the webhooks when scraped.
type collector struct{ m *Manager }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descBackoff, descFailures, descState, descSkipped, descCount} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	hooks := c.m.list()
	last := c.m.opts.Log.LastID()
	ch <- prometheus.MustNewConstMetric(descCount, prometheus.GaugeValue, float64(len(hooks)))
	for _, h := range hooks {
		s := h.status(last)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.lag), h.id)
		ch <- prometheus.MustNewConstMetric(descBackoff, prometheus.GaugeValue, s.backoff.Seconds(), h.id)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(s.failures), h.id)
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(s.skipped), h.id)
		for _, st := range []string{stateActive, "retrying", stateDisabled} {
			v := 0.0
			if s.metricState() == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, h.id, st)
		}
	}
}
