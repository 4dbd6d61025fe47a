package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/testbin"
)

// BuildBinary builds ./cmd/securevision of the module at moduleDir into
// out and returns the command it ran.
func BuildBinary(ctx context.Context, moduleDir, out string) (string, error) {
	args, err := testbin.Build(ctx, moduleDir, out)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return shellJoin(args), nil
}

// ServerOptions configure StartServer.
type ServerOptions struct {
	// Binary is the securevision binary; empty runs the server in-process
	// (same wiring, same process as the caller: less honest numbers).
	Binary string
	// StoreDir is the store directory.
	StoreDir string
	// LogPath receives the server's stderr (JSON logs); empty discards.
	LogPath string
	// Ready bounds the wait for /health (default 5 minutes: a big store
	// opens in seconds, a broken one never).
	Ready time.Duration
	// Env adds SECUREVISION__ settings (KEY=VALUE) to the binary's
	// environment; SourceKeysOnly is the in-process equivalent of
	// SECUREVISION__EVENTS__SOURCE_INDEX=keys.
	Env            []string
	SourceKeysOnly bool
}

// Server is a running server.
type Server struct {
	URL string
	// Command is how it was started (env and arguments).
	Command string
	// ReadyAfter is the time from start to the first 200 from /health.
	ReadyAfter time.Duration

	proc    *testbin.Server // the binary; nil in-process
	logFile *os.File
	stop    func(context.Context) error
}

// StartServer starts the server on a free loopback port and waits until
// /health answers 200. The binary runs with internal/testbin's explicit
// environment: none of this process's SECUREVISION__ settings (auth,
// rate limits) leak into the benchmark.
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	if o.Ready <= 0 {
		o.Ready = 5 * time.Minute
	}
	abs, err := filepath.Abs(o.StoreDir)
	if err != nil {
		return nil, err
	}
	if o.Binary == "" {
		return startInProcess(ctx, abs, o)
	}
	s := &Server{}
	to := testbin.Options{Binary: o.Binary, StoreDir: abs, Ready: o.Ready,
		BackupDir: filepath.Join(filepath.Dir(abs), "bench-backups"),
		Env:       append([]string{"SECUREVISION__LOG_LEVEL=INFO"}, o.Env...)}
	if o.LogPath != "" {
		if s.logFile, err = os.Create(o.LogPath); err != nil {
			return nil, err
		}
		to.Stderr = s.logFile
	}
	// No background retention during measurements (testbin's default);
	// the data is recent anyway.
	if s.proc, err = testbin.Start(ctx, to); err != nil {
		s.closeLog()
		return nil, fmt.Errorf("bench: %w", err)
	}
	s.URL, s.Command, s.ReadyAfter = s.proc.URL, s.proc.Command, s.proc.ReadyAfter
	s.stop = func(context.Context) error {
		defer s.closeLog()
		return s.proc.Stop()
	}
	return s, nil
}

// PID is the server's process id; an in-process server is this process.
func (s *Server) PID() int {
	if s.proc == nil {
		return os.Getpid()
	}
	return s.proc.PID()
}

func (s *Server) closeLog() {
	if s.logFile != nil {
		s.logFile.Close()
	}
}

// Stop shuts the server down and waits for it; the store is closed when
// it returns. The binary gets SIGTERM and is killed if it has not ended
// 30 s later (testbin's bound; ctx is for the in-process server).
func (s *Server) Stop(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop(ctx)
}

// startInProcess serves the store from this process: core.Open (the
// server's wiring of log, projections and ingest) and httpd, without the
// WebSocket hub and the vision pipeline.
func startInProcess(ctx context.Context, dir string, o ServerOptions) (*Server, error) {
	start := time.Now()
	reg := prometheus.NewRegistry()
	st, err := core.Open(core.Options{URL: dir, SourceKeysOnly: o.SourceKeysOnly, Registerer: reg})
	if err != nil {
		return nil, err
	}
	api, err := httpd.New(httpd.Options{Log: st.Log(), View: st.View(), Ingest: st.Ingest(),
		Gatherer: reg, Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	s := &Server{URL: "http://" + ln.Addr().String(),
		Command: "in-process: core.Open(" + dir + ") + httpd.New + http.Server on 127.0.0.1:0"}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	s.stop = func(ctx context.Context) error {
		return errors.Join(srv.Shutdown(ctx), st.Close())
	}
	if err := testbin.WaitHealthy(ctx, s.URL, o.Ready, served); err != nil {
		_ = s.Stop(context.Background())
		return nil, fmt.Errorf("bench: %w", err)
	}
	s.ReadyAfter = time.Since(start)
	return s, nil
}

// Health is the part of GET /health the benchmarks use.
type Health struct {
	OK  bool `json:"ok"`
	Log struct {
		FirstID uint64 `json:"first_id"`
		LastID  uint64 `json:"last_id"`
	} `json:"log"`
	RecentEvents struct {
		Total uint64 `json:"total"`
	} `json:"recent_events"`
}

// GetJSON GETs path and decodes the JSON answer into v.
func (s *Server) GetJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("bench: GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Metric reads one unlabelled gauge or counter from /metrics, parsed with
// Prometheus's own text-format parser.
func (s *Server) Metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("bench: parse /metrics: %w", err)
	}
	if mf := mfs[name]; mf != nil && len(mf.GetMetric()) == 1 {
		m := mf.GetMetric()[0]
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), nil
		case m.Counter != nil:
			return m.GetCounter().GetValue(), nil
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("bench: /metrics has no single gauge or counter %s", name)
}

// WaitCompactions polls /metrics until Pebble has run no compaction for
// quiet (none in progress and the completed count unchanged), or max
// passes; it returns how long it waited and whether the store settled.
// (Pebble's estimated compaction debt is not a signal: it stays above zero
// on an idle store.) A store just bulk-loaded (BuildStore) compacts for a
// while; queries measured meanwhile compete with that one-off work, which
// a long-running server has long finished.
func (s *Server) WaitCompactions(ctx context.Context, quiet, max time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	lastChange, lastTotal := start, -1.0
	for {
		run, err := s.Metric(ctx, "securevision_pebble_compactions_in_progress")
		if err != nil {
			return time.Since(start), false, err
		}
		total, err := s.Metric(ctx, "securevision_pebble_compactions_total")
		if err != nil {
			return time.Since(start), false, err
		}
		if run > 0 || total != lastTotal {
			lastChange, lastTotal = time.Now(), total
		}
		if time.Since(lastChange) >= quiet {
			return time.Since(start), true, nil
		}
		if time.Since(start) > max {
			return time.Since(start), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Health reads /health.
func (s *Server) Health(ctx context.Context) (Health, error) {
	var h Health
	err := s.GetJSON(ctx, "/health", &h)
	return h, err
}

// StartupLog is what the server's JSON log says about opening the store.
type StartupLog struct {
	// ProjectionsTook is the "took" of "projections loaded" (zone map and
	// rolling counts).
	ProjectionsTook time.Duration
	Blocks          int
	RecentEvents    int
	// LogOpenAt and ServingAt are the times of "event log open" and
	// "serving", relative to the first log line.
	LogOpenAt, ServingAt time.Duration
}

// ParseStartupLog reads a server's JSON log (slog JSONHandler).
func ParseStartupLog(r io.Reader) (StartupLog, error) {
	var (
		sl    StartupLog
		first time.Time
		found bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Time         time.Time `json:"time"`
			Msg          string    `json:"msg"`
			Took         string    `json:"took"`
			Blocks       int       `json:"blocks"`
			RecentEvents int       `json:"recent_events"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if first.IsZero() {
			first = l.Time
		}
		switch l.Msg {
		case "projections loaded":
			d, err := time.ParseDuration(l.Took)
			if err != nil {
				return sl, fmt.Errorf("bench: projections took %q: %w", l.Took, err)
			}
			sl.ProjectionsTook, sl.Blocks, sl.RecentEvents, found = d, l.Blocks, l.RecentEvents, true
		case "event log open":
			sl.LogOpenAt = l.Time.Sub(first)
		case "serving":
			sl.ServingAt = l.Time.Sub(first)
		}
	}
	if !found {
		return sl, errors.New("bench: no \"projections loaded\" line in the server log")
	}
	return sl, sc.Err()
}
