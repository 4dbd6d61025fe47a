package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/httpd"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/metrics"
	"github.com/securevision/events/projections"
)

// Server timeouts. ReadHeaderTimeout bounds slowloris clients; ReadTimeout
// bounds an 8 MiB ingest body on a slow link; WriteTimeout is generous for
// 1000-event pages but bounded; IdleTimeout recycles keep-alive
// connections. /stream hijacks its connection and sets its own deadlines.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// shutdownGrace bounds draining in-flight requests at shutdown.
	shutdownGrace = 15 * time.Second
)

// openSink opens a store as an ingest.Sink for the detect and import
// commands; close flushes and closes it.
func openSink(_ context.Context, url string) (ingest.Sink, func() error, error) {
	c, err := core.Open(core.Options{URL: url})
	if err != nil {
		return nil, nil, err
	}
	return c.Ingest(), c.Close, nil
}

func runServe(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(environ)}))
	cfg, err := LoadConfig(environMap(environ))
	if err != nil {
		fmt.Fprintf(stderr, "securevision: config: %v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.API.Host, "host", cfg.API.Host, "listen address (SECUREVISION__API__HOST)")
	fs.IntVar(&cfg.API.Port, "port", cfg.API.Port, "listen port (SECUREVISION__API__PORT)")
	fs.StringVar(&cfg.Events.DBURL, "db-url", cfg.Events.DBURL, "store URL (SECUREVISION__EVENTS__DB_URL)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Validate(environMap(environ)); err != nil {
		fmt.Fprintf(stderr, "securevision: config: %v\n", err)
		return 2
	}
	if err := serve(ctx, cfg, logger, environ); err != nil {
		logger.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

func logLevel(environ []string) slog.Level {
	var l slog.Level
	if v, ok := environMap(environ)["SECUREVISION__LOG_LEVEL"]; ok {
		_ = l.UnmarshalText([]byte(v))
	}
	return l
}

// serve runs until ctx is done, then shuts down in order: stop accepting,
// drain requests, close streams, stop producers, flush and close the store
// (the start-up and shutdown order package internal/core documents).
func serve(ctx context.Context, cfg *Config, logger *slog.Logger, environ []string) error {
	reg := metrics.NewRegistry()
	vis, err := newVision(cfg, logger, reg)
	if err != nil {
		return err
	}
	st, err := core.Open(core.Options{
		URL:            cfg.Events.DBURL,
		CacheBytes:     int64(cfg.Events.CacheMB) << 20,
		SourceKeysOnly: cfg.Events.SourceIndex == "keys",
		Logger:         logger,
		Registerer:     reg,
		Cluster:        clusterOptions(cfg),
	})
	if err != nil {
		return err
	}
	var closeErrs []error
	defer func() {
		// Last step of the shutdown order (see internal/core).
		if err := st.Close(); err != nil {
			closeErrs = append(closeErrs, err)
			logger.Error("close store", "err", err)
		}
	}()
	// The watchlist files are a seed: the API's changes (watchlist_change
	// events, kept by the projections) win for the plates they name.
	vis.lists.SetOverrides(st.View())
	st.Ingest().SetLists(vis.lists)
	// The recogniser enrols the store's face gallery too, and again after
	// each change.
	gallery := newGalleryWiring(st, vis, logger)
	if err := vis.attach(st.Ingest()); err != nil {
		return err
	}

	hub, err := newStream(cfg, st, logger, reg)
	if err != nil {
		return err
	}
	// Cluster mode: the integrations' lease and shared state.
	shared, err := newIntegrations(ctx, st, logger)
	if err != nil {
		return err
	}
	hooks, hookRoutes, err := newWebhooks(cfg, st, shared, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		// After the HTTP drain and the producers, before the store
		// closes (deferred earlier, so it runs later): the last cursors
		// are written.
		if err := hooks.Close(); err != nil {
			closeErrs = append(closeErrs, err)
			logger.Error("close webhooks", "err", err)
		}
	}()
	// The MQTT publisher reads the log from its cursor; it stops before
	// the store closes (step 4 below; the deferred stop covers the early
	// returns and is a no-op after it).
	mq, err := newMQTT(cfg, st, shared, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := mq.stop(ctx); err != nil {
			logger.Error("stop mqtt", "err", err)
		}
	}()
	stats, err := hourlyStats(st, logger)
	if err != nil {
		return err
	}
	backup, err := backupFunc(st.Log(), cfg.Events.BackupDir, cfg.Events.BackupKeep, logger)
	if err != nil {
		return err
	}
	events, eraser, health := clusterAPI(st)
	api, err := httpd.New(httpd.Options{
		Log: st.Log(), View: events, Ingest: st.Ingest(),
		Stream: hub.handler(), StreamClients: hub.clients,
		WSEnabled:          cfg.API.WSEnabled,
		AuthToken:          cfg.API.AuthToken,
		CORSOrigins:        cfg.API.CORSOrigins,
		RateLimitPerMinute: cfg.API.RateLimit,
		RetentionDays:      cfg.Events.RetentionDays,
		Backup:             backup,
		WatchlistFiles:     vis.lists,
		Eraser:             eraser,
		Scrubber:           st.Log(),
		StreamEraser:       streamEraser(st),
		Lists:              vis.lists,
		Health:             append(append(health, mq.health()...), httpd.HealthSection{Name: "webhooks", Value: hooks.Health}),
		Routes:             append([]httpd.Route{stats}, hookRoutes...),
		Gatherer:           reg,
		Registerer:         reg,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr(), err)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if n := st.Cluster(); n != nil {
			n.RunRetention(bg, cfg.Events.RetentionDays, cfg.Events.CleanupInterval)
			return
		}
		st.View().RunRetention(bg, projections.RetentionOptions{Days: cfg.Events.RetentionDays, Interval: cfg.Events.CleanupInterval})
	}()
	vis.start(bg, &wg)
	// Cluster mode: deliver the integrations while holding the lease;
	// stopped with the loops (step 3), before the webhooks close.
	shared.run(bg, &wg, hooks, mq)
	gallery.start(bg, &wg)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				vis.reload()
			case <-bg.Done():
				return
			}
		}
	}()

	if cfg.Debug.PprofAddr != "" {
		// Profiling on its own loopback listener, never on the API port.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dbg := &http.Server{Addr: cfg.Debug.PprofAddr, Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
		go func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("pprof listener", "err", err)
			}
		}()
		defer dbg.Close()
		logger.Info("pprof listening", "addr", cfg.Debug.PprofAddr)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "store", cfg.Events.DBURL,
		"auth", cfg.API.AuthToken != "", "ws_enabled", cfg.API.WSEnabled, "retention_days", cfg.Events.RetentionDays)

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-srvErr:
		stopBG()
		wg.Wait()
		return fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// 1. Stop accepting and drain in-flight requests (appends among them
	// finish: their batches commit before the store closes).
	if err := srv.Shutdown(sctx); err != nil {
		closeErrs = append(closeErrs, fmt.Errorf("drain http: %w", err))
	}
	// 2. Streams get close code 1001.
	if err := hub.shutdown(sctx); err != nil {
		closeErrs = append(closeErrs, fmt.Errorf("close streams: %w", err))
	}
	// 3. Producers and loops stop.
	stopBG()
	wg.Wait()
	// 4. The MQTT publisher waits for its PUBACKs in flight, disconnects
	// and writes its cursor; then the deferred store close flushes.
	if err := mq.stop(sctx); err != nil {
		closeErrs = append(closeErrs, fmt.Errorf("stop mqtt: %w", err))
	}
	logger.Info("stopped", "last_id", st.Log().LastID())
	return errors.Join(closeErrs...)
}

// backupFunc makes POST /backup: eventlog.Backups writes the checkpoint
// and rotates. The answer names the backup relative to the backup folder:
// an absolute server path is logged, never sent.
func backupFunc(l *eventlog.Log, dir string, keep int, logger *slog.Logger) (func(context.Context) (any, error), error) {
	if dir == "" {
		return nil, nil
	}
	b, err := eventlog.NewBackups(eventlog.BackupOptions{Log: l, Dir: dir, Keep: keep, Logger: logger})
	if errors.Is(err, eventlog.ErrBackupInMemory) {
		logger.Info("POST /backup is off: the store is in memory")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return func(context.Context) (any, error) {
		res, err := b.Run()
		if err != nil {
			return nil, err
		}
		logger.Info("backup written", "dir", res.Path, "last_id", res.LastID)
		return struct {
			Path   string `json:"path"`
			LastID uint64 `json:"last_id"`
		}{res.Name, res.LastID}, nil
	}, nil
}
