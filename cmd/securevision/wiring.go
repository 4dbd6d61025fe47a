package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/ingest/vision"
	"github.com/securevision/events/ingest/watchlist"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/wsfanout"
)

// stream wires the wsfanout hub: it is subscribed to the core's commit
// bus (every durable batch, after the projections) and mounted at
// /stream.
type stream struct{ hub *wsfanout.Hub }

func newStream(cfg *Config, st *core.Core, logger *slog.Logger, reg prometheus.Registerer) (*stream, error) {
	hub, err := wsfanout.New(wsfanout.Options{
		Log:        st.Log(),
		Enabled:    cfg.API.WSEnabled,
		MaxClients: cfg.API.WSMaxConns,
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	st.Subscribe(hub.Publish) // for the server's lifetime: never unsubscribed
	return &stream{hub: hub}, nil
}

func (s *stream) handler() http.Handler              { return s.hub }
func (s *stream) clients() int                       { return s.hub.Clients() }
func (s *stream) shutdown(ctx context.Context) error { return s.hub.Shutdown(ctx) }

// visionWiring runs the camera sources and the plate watchlists. The
// watchlists also fill list_match for plates posted to /ingest.
type visionWiring struct {
	opts     vision.Options
	lists    *watchlist.Watchlist
	pipeline *vision.Pipeline
	logger   *slog.Logger
}

// newVision checks the vision settings before anything is opened: a source
// configured in a build without OpenCV stops start-up here.
func newVision(cfg *Config, logger *slog.Logger, reg prometheus.Registerer) (*visionWiring, error) {
	in := cfg.Ingest
	sources, err := vision.ParseSources(in.Sources)
	if err != nil {
		return nil, &ConfigError{Var: "SECUREVISION__INGEST__SOURCES", Value: in.Sources, Why: err.Error()}
	}
	if len(sources) > 0 && !vision.Available() {
		return nil, fmt.Errorf("SECUREVISION__INGEST__SOURCES names %d source(s) but this binary was built without OpenCV: install OpenCV (make deps) and rebuild with -tags gocv (make build does when OpenCV is present)", len(sources))
	}
	regions, err := vision.ParseRegions(in.Regions)
	if err != nil {
		return nil, &ConfigError{Var: "SECUREVISION__INGEST__REGIONS", Value: in.Regions, Why: err.Error()}
	}
	lists, err := watchlist.New(watchlist.Options{Whitelist: in.Whitelist, Blacklist: in.Blacklist, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("plate watchlists: %w", err)
	}
	v := &visionWiring{lists: lists, logger: logger, opts: vision.Options{
		Sources: sources, FPS: in.FPS, GalleryDir: in.GalleryDir,
		FaceCascade: in.FaceCascade, PlateCascade: in.PlateCascade,
		Threshold: in.Threshold, Cooldown: in.Cooldown, Regions: regions,
		Lists: lists, Logger: logger, Registerer: reg,
	}}
	if err := v.opts.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

// attach builds the pipeline over the append path.
func (v *visionWiring) attach(sink ingest.Sink) error {
	p, err := vision.New(v.opts, sink)
	if err != nil {
		return err
	}
	v.pipeline = p
	return nil
}

// start runs the watchlist reloader and the sources until ctx is done.
func (v *visionWiring) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := v.lists.Run(ctx); err != nil && ctx.Err() == nil {
			v.logger.Error("watchlist reloader stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := v.pipeline.Run(ctx); err != nil && ctx.Err() == nil {
			v.logger.Error("vision pipeline stopped", "err", err)
		}
	}()
}

// reload re-reads the watchlists and re-enrols the gallery (SIGHUP).
func (v *visionWiring) reload() {
	if err := v.lists.Reload(); err != nil {
		v.logger.Error("reload watchlists", "err", err)
	}
	if v.pipeline != nil {
		if err := v.pipeline.Reload(); err != nil {
			v.logger.Error("reload gallery", "err", err)
		}
	}
	v.logger.Info("reloaded watchlists and gallery")
}

// clusterOptions is cluster mode's configuration; nil (single node) when
// no NATS URL is set.
func clusterOptions(cfg *Config) *cluster.Options {
	c := cfg.Cluster
	if strings.TrimSpace(c.NATSURL) == "" {
		return nil
	}
	return &cluster.Options{URLs: c.NATSURL, Stream: c.Stream, Replicas: c.Replicas, CredsFile: c.CredsFile, TLSCAFile: c.TLSCAFile}
}

// clusterAPI is what the HTTP API takes from the core: the projections
// (in cluster mode with the cluster-wide cleanup) and, in cluster mode,
// /health's cluster member.
func clusterAPI(st *core.Core) (httpd.Events, []httpd.HealthSection) {
	n := st.Cluster()
	if n == nil {
		return st.View(), nil
	}
	return cluster.Events{View: st.View(), Node: n}, []httpd.HealthSection{{Name: "cluster", Value: func() any { return n.Health() }}}
}
