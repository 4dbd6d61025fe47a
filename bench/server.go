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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/core"
)

// BuildBinary builds ./cmd/securevision of the module at moduleDir into
// out and returns the command it ran.
func BuildBinary(ctx context.Context, moduleDir, out string) (string, error) {
	args := []string{"build", "-o", out, "./cmd/securevision"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build: %w\n%s", err, b)
	}
	return shellJoin(append([]string{"go"}, args...)), nil
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

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan error
	stop    func(context.Context) error
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the server binds it; the server then fails fast.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartServer starts the server on a free loopback port and waits until
// /health answers 200.
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
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := []string{
		"SECUREVISION__API__HOST=127.0.0.1",
		"SECUREVISION__API__PORT=" + strconv.Itoa(port),
		"SECUREVISION__EVENTS__DB_URL=pebble://" + abs,
		// No background retention during measurements; the data is
		// recent anyway.
		"SECUREVISION__EVENTS__RETENTION_DAYS=0",
		"SECUREVISION__EVENTS__BACKUP_DIR=" + filepath.Join(filepath.Dir(abs), "bench-backups"),
		"SECUREVISION__LOG_LEVEL=INFO",
	}
	env = append(env, o.Env...)
	cmd := exec.Command(o.Binary, "serve")
	// The parent's SECUREVISION__ settings (auth, rate limits) must not
	// leak into the benchmark.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECUREVISION__") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan error, 1),
		Command: strings.Join(env, " ") + " " + o.Binary + " serve"}
	if o.LogPath != "" {
		if s.logFile, err = os.Create(o.LogPath); err != nil {
			return nil, err
		}
		cmd.Stderr = s.logFile
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		s.closeLog()
		return nil, fmt.Errorf("bench: start %s: %w", o.Binary, err)
	}
	go func() { s.exited <- cmd.Wait() }()
	s.stop = s.stopProcess
	if err := s.waitReady(ctx, start, o.Ready); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

// PID is the server's process id; an in-process server is this process.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return os.Getpid()
	}
	return s.cmd.Process.Pid
}

func (s *Server) closeLog() {
	if s.logFile != nil {
		s.logFile.Close()
	}
}

func (s *Server) waitReady(ctx context.Context, start time.Time, bound time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := start.Add(bound)
	for {
		resp, err := client.Get(s.URL + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.ReadyAfter = time.Since(start)
				return nil
			}
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("bench: server exited before /health answered: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		// Polling every 2 ms bounds the error of ReadyAfter.
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: /health did not answer 200 within %s", bound)
		}
	}
}

// stopProcess sends SIGTERM (ordered shutdown) and kills after the grace.
func (s *Server) stopProcess(ctx context.Context) error {
	defer s.closeLog()
	select {
	case err := <-s.exited:
		return fmt.Errorf("bench: server had exited: %v", err)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	// The server drains for at most 15 s; a little more before killing.
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case err := <-s.exited:
		return err
	case <-t.C:
	case <-ctx.Done():
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return errors.New("bench: server did not stop within 30s after SIGTERM: killed")
}

// Stop shuts the server down and waits for it; the store is closed when
// it returns.
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
	s := &Server{URL: "http://" + ln.Addr().String(), exited: make(chan error, 1),
		Command: "in-process: core.Open(" + dir + ") + httpd.New + http.Server on 127.0.0.1:0"}
	go func() { s.exited <- srv.Serve(ln) }()
	s.stop = func(ctx context.Context) error {
		return errors.Join(srv.Shutdown(ctx), st.Close())
	}
	if err := s.waitReady(ctx, start, o.Ready); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
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
