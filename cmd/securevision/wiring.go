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
	"github.com/securevision/events/httpd/ui"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/ingest/vision"
	"github.com/securevision/events/ingest/watchlist"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/lease"
	"github.com/securevision/events/internal/mqtt"
	"github.com/securevision/events/internal/webhook"
	"github.com/securevision/events/projections"
	"github.com/securevision/events/wsfanout"
)

// stream wires the wsfanout hub: it is subscribed to the core's commit
// bus (every durable batch, after the projections) and mounted at
// /stream.
type stream struct{ hub *wsfanout.Hub }

func newStream(cfg *Config, st *core.Core, logger *slog.Logger, reg prometheus.Registerer) (*stream, error) {
	hub, err := wsfanout.New(wsfanout.Options{
		Log:        st.Log(),
		Decorate:   st.View().Decorate,
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

// hourlyStats wires GET /stats/hourly (the dashboard's chart): the
// projection is subscribed to the commit bus after the stream and
// rebuilds what was stored before on its first request.
func hourlyStats(st *core.Core, logger *slog.Logger) (httpd.Route, error) {
	h, err := projections.NewHourly(projections.HourlyOptions{Log: st.Log(), View: st.View(), Logger: logger})
	if err != nil {
		return httpd.Route{}, err
	}
	st.Subscribe(h.Committed) // for the server's lifetime: never unsubscribed
	return httpd.Route{Method: http.MethodGet, Path: ui.StatsPath, Handler: ui.HourlyHandler(h)}, nil
}

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

// mqttWiring runs the MQTT publisher (package internal/mqtt) when
// SECUREVISION__MQTT__URL is set: a reader of the log with its own
// cursor, woken by the commit bus, never on the commit path.
type mqttWiring struct {
	pub *mqtt.Publisher
	// Cluster mode: a publisher per lease term (term), with its options.
	opts mqtt.Options
	st   *core.Core
	mu   sync.Mutex
	cur  *mqtt.Publisher // the term's publisher; nil while another node delivers
}

// newMQTT builds the publisher and subscribes it to the commit bus; nil
// when MQTT is off. It connects in the background: an unreachable broker
// is logged and shown in /health, and never stops the server.
func newMQTT(cfg *Config, st *core.Core, shared *integrations, logger *slog.Logger, reg prometheus.Registerer) (*mqttWiring, error) {
	m := cfg.MQTT
	if m.URL == "" {
		return nil, nil
	}
	o := mqtt.Options{
		URL: m.URL, Username: m.Username, Password: m.Password, ClientID: m.ClientID,
		TopicPrefix: m.TopicPrefix, DiscoveryPrefix: m.DiscoveryPrefix, AlertOffDelay: m.AlertOffDelay,
		Log: st.Log(), Logger: logger, Registerer: reg,
		// The firehose carries an event as GET /events/{id} returns it,
		// with its newest correction.
		Decorate: st.View().Decorate,
	}
	if shared != nil {
		// Cluster mode: the lease holder publishes (term), from the
		// shared cursor; the options are checked now.
		o.Cursor = lease.Cursor{KV: shared.buckets.State, Key: "mqtt.cursor"}
		check := o
		check.Registerer = nil
		if _, err := mqtt.New(check); err != nil {
			return nil, err
		}
		return &mqttWiring{opts: o, st: st}, nil
	}
	pub, err := mqtt.New(o)
	if err != nil {
		return nil, err
	}
	st.Subscribe(pub.Notify) // for the server's lifetime; Notify after Stop is harmless
	if err := pub.Start(); err != nil {
		return nil, err
	}
	return &mqttWiring{pub: pub}, nil
}

// health is the /health section (none when MQTT is off).
func (w *mqttWiring) health() []httpd.HealthSection {
	if w == nil {
		return nil
	}
	if w.pub == nil {
		return []httpd.HealthSection{{Name: "mqtt", Value: func() any {
			w.mu.Lock()
			cur := w.cur
			w.mu.Unlock()
			out := struct {
				Delivering bool `json:"delivering"`
				mqtt.Health
			}{Delivering: cur != nil}
			if cur != nil {
				out.Health = cur.Health()
			}
			return out
		}}}
	}
	return []httpd.HealthSection{{Name: "mqtt", Value: func() any { return w.pub.Health() }}}
}

// term publishes while this node holds the integrations' lease (cluster
// mode): a publisher of its own, from the shared cursor, stopped (its
// PUBACKs awaited a bounded time, its cursor written) when ctx ends.
func (w *mqttWiring) term(ctx context.Context) {
	if w == nil || w.pub != nil {
		return
	}
	pub, err := mqtt.New(w.opts)
	if err != nil {
		w.opts.Logger.Error("mqtt: publisher", "err", err)
		return
	}
	unsub := w.st.Subscribe(pub.Notify)
	defer unsub()
	if err := pub.Start(); err != nil {
		w.opts.Logger.Error("mqtt: start", "err", err)
		_ = pub.Stop(context.Background())
		return
	}
	w.mu.Lock()
	w.cur = pub
	w.mu.Unlock()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), lease.StopWithin)
	defer cancel()
	if err := pub.Stop(sctx); err != nil {
		w.opts.Logger.Error("mqtt: stop at the end of the lease", "err", err)
	}
	w.mu.Lock()
	w.cur = nil
	w.mu.Unlock()
}

// stop waits for the PUBACKs in flight, disconnects and writes the final
// cursor; before Core.Close.
func (w *mqttWiring) stop(ctx context.Context) error {
	if w == nil || w.pub == nil {
		return nil
	}
	return w.pub.Stop(ctx)
}

// newWebhooks starts the webhook deliveries over the core (each webhook
// reads the log from its cursor, woken by the commit bus) and returns
// their API routes. Close the manager before the core.
func newWebhooks(cfg *Config, st *core.Core, shared *integrations, logger *slog.Logger, reg prometheus.Registerer) (*webhook.Manager, []httpd.Route, error) {
	o := webhook.Options{
		Log:       st.Log(),
		Subscribe: st.Subscribe,
		// Deliveries carry an event as GET /events/{id} returns it.
		Decorate:       st.View().Decorate,
		AllowLoopback:  cfg.Webhooks.WebhookAllowLoopback,
		Timeout:        cfg.Webhooks.WebhookTimeout,
		MaxConcurrency: cfg.Webhooks.WebhookConcurrency,
		Logger:         logger,
		Registerer:     reg,
	}
	if shared != nil {
		o.Shared = shared.buckets.State
	}
	m, err := webhook.New(o)
	if err != nil {
		return nil, nil, err
	}
	var routes []httpd.Route
	for _, r := range m.Routes() {
		routes = append(routes, httpd.Route{Method: r.Method, Path: r.Path, Handler: r.Handler})
	}
	return m, routes, nil
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
// (in cluster mode with the cluster-wide cleanup), the eraser and, in
// cluster mode, /health's cluster member.
func clusterAPI(st *core.Core) (httpd.Events, httpd.Eraser, []httpd.HealthSection) {
	n := st.Cluster()
	if n == nil {
		return st.View(), st.View(), nil
	}
	return cluster.Events{View: st.View(), Node: n}, st.View(),
		[]httpd.HealthSection{{Name: "cluster", Value: func() any { return n.Health() }}}
}

// streamEraser is the erasure routes' stream eraser: the cluster node in
// cluster mode (its stream is the log of record), none on one node.
func streamEraser(st *core.Core) httpd.StreamEraser {
	if n := st.Cluster(); n != nil {
		return n
	}
	return nil
}

// integrations is cluster mode's lease and shared state of the
// integrations (package lease): one node at a time runs the MQTT
// publisher and the webhook deliveries; nil on one node.
type integrations struct {
	buckets lease.Buckets
	lease   *lease.Lease
}

// newIntegrations opens the lease and state buckets beside the stream.
func newIntegrations(ctx context.Context, st *core.Core, logger *slog.Logger) (*integrations, error) {
	n := st.Cluster()
	if n == nil {
		return nil, nil
	}
	b, err := lease.Open(ctx, n.JetStream(), n.Stream(), n.Replicas(), 0)
	if err != nil {
		return nil, err
	}
	l, err := lease.New(lease.Options{KV: b.Lease, Name: n.Name(), Logger: logger})
	if err != nil {
		return nil, err
	}
	return &integrations{buckets: b, lease: l}, nil
}

// run delivers the integrations while this node holds the lease, until
// ctx ends (then the lease is released for another node).
func (i *integrations) run(ctx context.Context, wg *sync.WaitGroup, hooks *webhook.Manager, mq *mqttWiring) {
	if i == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		i.lease.Run(ctx, func(ctx context.Context) {
			var term sync.WaitGroup
			term.Add(2)
			go func() { defer term.Done(); hooks.Deliver(ctx) }()
			go func() { defer term.Done(); mq.term(ctx) }()
			term.Wait()
		})
	}()
}
