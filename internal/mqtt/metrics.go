package mqtt

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	acked, failed prometheus.Counter
	skipped       prometheus.Counter
	corrupt       prometheus.Counter
	overLimit     prometheus.Counter
	reconnects    prometheus.Counter
	connectErrors prometheus.Counter
	persistErrors prometheus.Counter

	reg prometheus.Registerer
	cs  []prometheus.Collector
}

// unregister removes the metrics from the registerer.
func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}

// newMetrics registers the publisher's metrics on reg (nil: none). The
// gauges read the publisher's atomics at scrape time.
func newMetrics(reg prometheus.Registerer, p *Publisher) *metrics {
	published := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securevision_mqtt_published_events_total",
		Help: "Detection events published on the firehose, by outcome: acked (the broker's PUBACK arrived for the event and its retained messages) or failed (the connection ended first; published again after reconnecting).",
	}, []string{"outcome"})
	m := &metrics{
		acked:  published.WithLabelValues("acked"),
		failed: published.WithLabelValues("failed"),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_skipped_events_total",
			Help: "Events retention deleted before they were published (the cursor jumped over them).",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_corrupt_records_total",
			Help: "Records skipped because they did not decode.",
		}),
		overLimit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_cameras_over_limit_events_total",
			Help: "Events of cameras beyond the camera limit (published, without discovery or alert).",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_reconnects_total",
			Help: "Connections to the broker made after the first one.",
		}),
		connectErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_connect_errors_total",
			Help: "Failed connection attempts.",
		}),
		persistErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_mqtt_cursor_write_errors_total",
			Help: "Failed writes of the cursor to the store.",
		}),
	}
	if reg == nil {
		return m
	}
	m.reg = reg
	m.cs = append(m.cs, published, m.skipped, m.corrupt, m.overLimit, m.reconnects, m.connectErrors, m.persistErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_mqtt_connected",
			Help: "1 while connected to the broker.",
		}, func() float64 {
			if p.connected.Load() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_mqtt_lag_events",
			Help: "Newest id minus the cursor: events not yet acknowledged by the broker.",
		}, func() float64 { return float64(p.lag()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_mqtt_cursor_id",
			Help: "The cursor: every event up to this id is acknowledged by the broker.",
		}, func() float64 { return float64(p.cursor.Load()) }),
	)
	reg.MustRegister(m.cs...)
	return m
}
