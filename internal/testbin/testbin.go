// Package testbin builds the real securevision binary and runs it for the
// checks that drive it from outside (reliability's harness and soak, the
// benchmarks): on a free loopback port, with an explicit environment,
// until /health answers; it keeps the server's log and stops it with
// SIGTERM (SIGKILL after a bound), or kills it outright for the crash
// test. It also holds LockedBuffer, the log collector tests share.
//
// It imports only the standard library; the production binary does not
// import it.
package testbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ModuleRoot is the directory of the module's go.mod (`go env GOMOD`).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testbin: go env GOMOD: %w", err)
	}
	p := strings.TrimSpace(string(out))
	if p == "" || p == os.DevNull {
		return "", errors.New("testbin: not inside the module")
	}
	return filepath.Dir(p), nil
}

// Build builds ./cmd/securevision of the module at moduleDir (the module
// of the working directory when empty) into out, and returns the command
// it ran, as arguments.
func Build(ctx context.Context, moduleDir, out string) ([]string, error) {
	if moduleDir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return nil, err
		}
		moduleDir = root
	}
	args := []string{"go", "build", "-o", out, "./cmd/securevision"}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return args, fmt.Errorf("testbin: go build: %w\n%s", err, b)
	}
	return args, nil
}

// FreePort asks the kernel for an unused port on 127.0.0.1. Another
// process could take it before the server binds it; the server then fails
// fast and Start says so.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Inherited names the variables of the caller's environment a server
// started by Start receives: the search path, the home and temporary
// directories, and the Go runtime's own settings (so that GOMAXPROCS=2
// in front of a benchmark still reaches the server). Nothing else is
// passed on; above all no SECUREVISION__ setting of the caller (an auth
// token, a rate limit) reaches a server a check starts: its settings are
// Options.Env and Start's defaults only.
var Inherited = []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"}

// Options configure Start.
type Options struct {
	// Binary is the securevision binary (see Build).
	Binary string
	// StoreDir is the Pebble store directory; relative paths are made
	// absolute.
	StoreDir string
	// Port to serve on; 0 picks a free one.
	Port int
	// BackupDir is SECUREVISION__EVENTS__BACKUP_DIR; default "backups"
	// beside StoreDir.
	BackupDir string
	// Env adds SECUREVISION__ settings (KEY=VALUE) after Start's defaults;
	// for a key set twice the later one counts.
	Env []string
	// Stderr also receives the server's log (it is kept in memory for
	// Logs either way).
	Stderr io.Writer
	// Ready bounds the wait for the first 200 from /health (default 30 s).
	Ready time.Duration
	// StopGrace is how long Stop waits after SIGTERM before it kills
	// (default 30 s: the server drains for at most 15 s).
	StopGrace time.Duration
}

// Server is a running securevision process.
type Server struct {
	// URL is http://127.0.0.1:<Port>.
	URL  string
	Port int
	// Settings are the SECUREVISION__ settings it was started with: the
	// defaults, then Options.Env.
	Settings []string
	// Command is how it was started: Settings, the binary and "serve".
	Command string
	// ReadyAfter is the time from start to the first 200 from /health.
	ReadyAfter time.Duration

	cmd   *exec.Cmd
	logs  LockedBuffer
	grace time.Duration
	done  chan struct{}
	err   error // the exit status, once done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts `securevision serve` on the store and waits until /health
// answers 200. The server's settings are, in order: API host 127.0.0.1
// and the port, the store, retention off (RETENTION_DAYS=0: a check's
// timestamps stay), the backup directory, then o.Env; its environment
// holds those and the caller's Inherited variables only.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Ready <= 0 {
		o.Ready = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 30 * time.Second
	}
	dir, err := filepath.Abs(o.StoreDir)
	if err != nil {
		return nil, err
	}
	if o.BackupDir == "" {
		o.BackupDir = filepath.Join(filepath.Dir(dir), "backups")
	}
	port := o.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	settings := append([]string{
		"SECUREVISION__API__HOST=127.0.0.1",
		"SECUREVISION__API__PORT=" + strconv.Itoa(port),
		"SECUREVISION__EVENTS__DB_URL=pebble://" + dir,
		"SECUREVISION__EVENTS__RETENTION_DAYS=0",
		"SECUREVISION__EVENTS__BACKUP_DIR=" + o.BackupDir,
	}, o.Env...)
	s := &Server{
		URL: "http://127.0.0.1:" + strconv.Itoa(port), Port: port, Settings: settings,
		Command: strings.Join(settings, " ") + " " + o.Binary + " serve",
		grace:   o.StopGrace, done: make(chan struct{}),
	}
	s.cmd = exec.Command(o.Binary, "serve")
	s.cmd.Env = append(inherited(), settings...)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = &s.logs
	if o.Stderr != nil {
		s.cmd.Stderr = io.MultiWriter(&s.logs, o.Stderr)
	}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbin: start %s: %w", o.Binary, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	if err := WaitHealthy(ctx, s.URL, o.Ready, s.done); err != nil {
		s.Kill()
		return nil, fmt.Errorf("%w (exit: %v); log:\n%s", err, s.err, tail(s.Logs(), 4<<10))
	}
	s.ReadyAfter = time.Since(start)
	return s, nil
}

// inherited is the part of the caller's environment a server gets.
func inherited() []string {
	var env []string
	for _, k := range Inherited {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// WaitHealthy polls base+"/health" until it answers 200, exited is closed
// (the server ended), ctx ends or bound passes. It polls every 2 ms, which
// bounds the error of a measured start-up time.
func WaitHealthy(ctx context.Context, base string, bound time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(bound)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("testbin: the server ended before /health answered 200")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbin: /health did not answer 200 within %s", bound)
		}
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Logs is everything the server wrote to stderr so far (its JSON log).
// Complete once the process has ended (Stop, Kill, Done).
func (s *Server) Logs() string { return s.logs.String() }

// Done is closed when the process has ended.
func (s *Server) Done() <-chan struct{} { return s.done }

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (no shutdown: what the crash test is about) and
// waits for the process to end.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Stop sends SIGTERM (the ordered shutdown) and waits for the process to
// end; after Options.StopGrace it kills it. It returns nil for a clean
// exit; an error for another exit status, for a server that had already
// ended before Stop (a crash, or Kill), or one that had to be killed.
// Later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.done:
		return fmt.Errorf("testbin: the server had ended before Stop: %v", s.err)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.grace)
	defer t.Stop()
	select {
	case <-s.done:
		return s.err
	case <-t.C:
	}
	s.Kill()
	return fmt.Errorf("testbin: the server did not stop within %s of SIGTERM: killed", s.grace)
}

// LockedBuffer is a bytes.Buffer that many goroutines may write at once:
// a server's or a logger's output, read by the test with String.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
