package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/ingest"
)

// stream wires wsfanout into the server.
type stream struct{}

func newStream(cfg *Config, st *store, logger *slog.Logger, reg prometheus.Registerer) (*stream, error) {
	return &stream{}, nil
}

func (s *stream) handler() http.Handler              { return nil }
func (s *stream) clients() int                       { return 0 }
func (s *stream) shutdown(ctx context.Context) error { return nil }

// visionWiring runs the camera sources and the watchlists.
type visionWiring struct {
	lists ingest.ListMatcher
}

func newVision(cfg *Config, logger *slog.Logger, reg prometheus.Registerer) (*visionWiring, error) {
	return &visionWiring{}, nil
}

func (v *visionWiring) start(ctx context.Context, wg *sync.WaitGroup, sink ingest.Sink) {}
func (v *visionWiring) reload()                                                         {}
