// Package metrics creates the process's one Prometheus registry, with the
// Go runtime and process collectors on it. The server (cmd/securevision
// serve) makes it at start-up and passes it down: each component registers
// its own metrics on it (newXxxMetrics(reg) in eventlog, projections,
// ingest, ingest/vision, wsfanout and httpd), and httpd serves it at
// GET /metrics (httpd.Options.Gatherer). This package serves nothing.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
