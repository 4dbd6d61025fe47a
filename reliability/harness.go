// Package reliability holds the system-level checks that run the real
// securevision binary: the kill -9 crash harness, the soak driver, abuse
// limits, backups and export/import under load, the real-Prometheus
// scrape test and the security checks. It builds the binary with the go
// tool and talks to it as clients do (HTTP, and WebSocket through gws);
// only a backup test also opens a backup read-only with eventlog.
//
// The heavy checks are opt-in so that `go test ./...` stays fast:
//
//	make crash-test   SV_CRASH=1   go test ./reliability -run TestCrash
//	make soak         go run ./reliability/cmd/soak -duration 10m
//	make mini-soak    go run ./reliability/cmd/soak -duration 60s
//
// This file is the harness they share: build the binary once, start it on a
// directory and a free port, post events, read the store back (offline
// with `securevision export`, online with WebSocket replay).
package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/lxzan/gws"
)

// ModuleRoot is the directory of go.mod (found with `go env GOMOD`).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	p := strings.TrimSpace(string(out))
	if p == "" || p == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(p), nil
}

// BuildBinary builds cmd/securevision into dir and returns its path. The
// SV_BINARY environment variable, when set, names a prebuilt binary instead.
func BuildBinary(dir string) (string, error) {
	if p := os.Getenv("SV_BINARY"); p != "" {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "securevision")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/securevision")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Server is a running securevision process.
type Server struct {
	Bin  string
	Dir  string // store directory
	Port int
	Base string // http://127.0.0.1:port
	Env  []string

	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartServer starts bin serving the store dir on a free port with the
// extra environment env (KEY=VALUE) and waits until /health answers.
// Retention is off unless env sets it.
func StartServer(bin, dir string, env ...string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartServerOn(bin, dir, port, env...)
}

// StartServerOn is StartServer on a given port.
func StartServerOn(bin, dir string, port int, env ...string) (*Server, error) {
	s := &Server{Bin: bin, Dir: dir, Port: port, Base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &lockedBuffer{}, done: make(chan struct{})}
	s.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"SECUREVISION__API__HOST=127.0.0.1",
		"SECUREVISION__API__PORT=" + strconv.Itoa(port),
		"SECUREVISION__EVENTS__DB_URL=pebble://" + dir,
		"SECUREVISION__EVENTS__RETENTION_DAYS=0",
		"SECUREVISION__EVENTS__BACKUP_DIR=" + filepath.Join(filepath.Dir(dir), "backups"),
	}, env...)
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = s.Env
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("server exited at start (%v): %s", s.err, s.stderr.String())
		default:
		}
		r, err := http.Get(s.Base + "/health")
		if err == nil {
			r.Body.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return nil, fmt.Errorf("server did not answer /health within 30s: %s", s.stderr.String())
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stderr is everything the server logged so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Kill sends SIGKILL and waits for the process to go.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Stop sends SIGTERM and waits up to 30 s (then SIGKILL); it returns the
// exit error, nil for a clean exit.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		s.Kill()
		return errors.New("server did not stop within 30s of SIGTERM")
	}
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Tool runs `securevision <args>` and returns stdout, stderr and the error.
func Tool(bin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// Verify runs `securevision verify --store dir`.
func Verify(bin, dir string) error {
	out, errb, err := Tool(bin, "verify", "--store", "pebble://"+dir)
	if err != nil {
		return fmt.Errorf("verify: %v: %s%s", err, out, errb)
	}
	return nil
}

// Export reads every stored event offline (`securevision export --store`),
// one raw JSON line each, in id order.
func Export(bin, dir string) ([][]byte, error) {
	out, errb, err := Tool(bin, "export", "--store", "pebble://"+dir)
	if err != nil {
		return nil, fmt.Errorf("export: %v: %s", err, errb)
	}
	return splitLines([]byte(out)), nil
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			lines = append(lines, append([]byte(nil), l...))
		}
	}
	return lines
}

// Stored is the part of a stored event the checks compare.
type Stored struct {
	ID            uint64          `json:"id"`
	Type          string          `json:"type"`
	TsMs          int64           `json:"ts_ms"`
	FrameSourceID string          `json:"frame_source_id"`
	CreatedAt     string          `json:"created_at"`
	Payload       json.RawMessage `json:"payload"`
}

// Ingest posts body to /ingest and returns the status and the decoded
// {"count","first_id","last_id"} on 200.
func Ingest(ctx context.Context, c *http.Client, base, token string, body []byte, ndjson bool) (int, IngestResult, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, IngestResult{}, nil, err
	}
	if ndjson {
		req.Header.Set("Content-Type", "application/x-ndjson")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, IngestResult{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, IngestResult{}, b, err
	}
	var res IngestResult
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &res); err != nil {
			return resp.StatusCode, res, b, fmt.Errorf("decode ingest answer %q: %w", b, err)
		}
	}
	return resp.StatusCode, res, b, nil
}

// IngestResult is POST /ingest's 200 body.
type IngestResult struct {
	Count   int    `json:"count"`
	FirstID uint64 `json:"first_id"`
	LastID  uint64 `json:"last_id"`
}

// EventJSON is a valid event whose content identifies it: the plate text
// or person name is tag.
func EventJSON(i int, src, tag string, tsMs int64) []byte {
	if i%2 == 0 {
		return fmt.Appendf(nil, `{"type":"plate_read","ts_ms":%d,"frame_source_id":%q,"payload":{"plate_text":%q,"confidence":0.5,"region":"US-CA","list_match":null,"seq":%d}}`, tsMs, src, tag, i)
	}
	return fmt.Appendf(nil, `{"type":"face_match","ts_ms":%d,"frame_source_id":%q,"payload":{"person_name":%q,"similarity":0.75,"bbox":[1,2,3,4],"seq":%d}}`, tsMs, src, tag, i)
}

// SameContent reports whether a stored event carries what was sent
// (everything but id and created_at, compared as decoded JSON).
func SameContent(sent, stored []byte) (bool, error) {
	var a, b map[string]any
	if err := json.Unmarshal(sent, &a); err != nil {
		return false, err
	}
	if err := json.Unmarshal(stored, &b); err != nil {
		return false, err
	}
	for _, m := range []map[string]any{a, b} {
		delete(m, "id")
		delete(m, "created_at")
	}
	// The log fills list_match for plates; the sent event may omit it.
	if p, ok := a["payload"].(map[string]any); ok && a["type"] == "plate_read" {
		if _, ok := p["list_match"]; !ok {
			p["list_match"] = nil
		}
	}
	return jsonEqual(a, b), nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// WSReplay connects to /stream?after=after and collects text messages until
// it has received an event with id >= until (or, with until 0, until the
// stream is quiet for quiet). It returns the raw messages (event JSON and
// control messages) in arrival order. found is false when /stream answers
// 404 (not mounted).
func WSReplay(base, query string, until uint64, quiet, timeout time.Duration, header http.Header) (msgs [][]byte, found bool, err error) {
	h := &collector{ch: make(chan []byte, 4096)}
	if header == nil {
		header = http.Header{}
	}
	addr := "ws" + strings.TrimPrefix(base, "http") + "/stream?" + query
	conn, resp, err := gws.NewClient(h, &gws.ClientOption{Addr: addr, RequestHeader: header, HandshakeTimeout: 10 * time.Second, ReadMaxPayloadSize: 16 << 20})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, false, nil
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, true, fmt.Errorf("dial %s: status %d: %w", addr, status, err)
	}
	go conn.ReadLoop()
	defer conn.WriteClose(1000, nil)
	end := time.After(timeout)
	q := time.NewTimer(quiet)
	defer q.Stop()
	for {
		select {
		case m, ok := <-h.ch:
			if !ok {
				return msgs, true, fmt.Errorf("stream closed after %d messages: %v", len(msgs), h.closeErr)
			}
			msgs = append(msgs, m)
			if until > 0 {
				var s struct {
					ID uint64 `json:"id"`
				}
				if json.Unmarshal(m, &s) == nil && s.ID >= until {
					return msgs, true, nil
				}
			}
			q.Reset(quiet)
		case <-q.C:
			if until == 0 {
				return msgs, true, nil
			}
		case <-end:
			return msgs, true, fmt.Errorf("timeout after %d messages waiting for id %d", len(msgs), until)
		}
	}
}

type collector struct {
	gws.BuiltinEventHandler
	ch       chan []byte
	closeErr error
	once     sync.Once
}

func (c *collector) OnMessage(_ *gws.Conn, m *gws.Message) {
	c.ch <- append([]byte(nil), m.Bytes()...)
	m.Close()
}

func (c *collector) OnClose(_ *gws.Conn, err error) {
	c.once.Do(func() { c.closeErr = err; close(c.ch) })
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
