package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is the real serve command on a free port.
type server struct {
	base   string
	cancel context.CancelFunc
	done   chan int
}

func startServer(t testing.TB, env ...string) *server {
	t.Helper()
	port := freePort(t)
	environ := append([]string{
		"SECUREVISION__EVENTS__DB_URL=memory://",
		fmt.Sprintf("SECUREVISION__API__PORT=%d", port),
	}, env...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{base: fmt.Sprintf("http://127.0.0.1:%d", port), cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- runServe(ctx, nil, environ, io.Discard, io.Discard) }()
	for i := 0; i < 100; i++ {
		if r, err := http.Get(s.base + "/health"); err == nil {
			r.Body.Close()
			t.Cleanup(s.stop)
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not start")
	return nil
}

func (s *server) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
	}
}

func (s *server) ingest(t *testing.T, body string) {
	t.Helper()
	r, err := http.Post(s.base+"/ingest", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", r.StatusCode, b)
	}
}

func (s *server) wsClients(t *testing.T) int {
	r, err := http.Get(s.base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var h struct {
		WSClients int `json:"ws_clients"`
	}
	json.NewDecoder(r.Body).Decode(&h)
	return h.WSClients
}

func (s *server) waitClients(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if s.wsClients(t) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ws_clients never reached %d", n)
}

const seedEvents = `[{"type":"face_match","frame_source_id":"camera_front_door","payload":{"person_name":"Jane Smith","similarity":0.95,"bbox":[120,160,270,320]}},` +
	`{"type":"plate_read","frame_source_id":"camera_driveway","payload":{"plate_text":"ABC1234","confidence":0.88,"region":"US-CA","list_match":"whitelist"}}]`

// TestSeedPythonWebSocketClient runs the original service's Python
// websockets client (testdata/ws_client.py) unchanged against the real
// server, through shutdown (close 1001).
// clientWait bounds how long a seed client may stay silent: a Python
// interpreter importing websockets on a loaded two-core machine (CI runs
// every package's tests at once) has taken more than 10 s to print its
// first line.
const clientWait = 60 * time.Second

func TestSeedPythonWebSocketClient(t *testing.T) {
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import websockets").Run() != nil {
		t.Skip("SKIPPED: no python3 with websockets (make deps installs python3-websockets): the seed's Python WebSocket client was not run")
	}
	s := startServer(t)
	cmd := exec.Command(py, "testdata/ws_client.py")
	cmd.Env = append(os.Environ(), "WS_URI=ws"+strings.TrimPrefix(s.base, "http")+"/stream")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("client exited early")
			}
			return l
		case <-time.After(clientWait):
			t.Fatalf("client printed nothing for %s", clientWait)
		}
		return ""
	}
	if l := next(); l != "Connected to SecureVision stream" {
		t.Fatalf("first line %q", l)
	}
	s.waitClients(t, 1)
	s.ingest(t, seedEvents)
	for _, want := range []string{"Face detected: Jane Smith", "Plate detected: ABC1234"} {
		if l := next(); l != want {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	s.stop() // graceful shutdown closes the stream with 1001
	if l := next(); l != "Connection closed" {
		t.Fatalf("after shutdown: %q", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
}

// TestSeedBrowserWebSocketClient runs the original service's browser
// client (testdata/ws_client.html) in headless Chromium against the real
// server. The page is served from another origin (its own port), so the
// stream refuses it until SECUREVISION__API__CORS_ORIGINS lists that
// origin.
func TestSeedBrowserWebSocketClient(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPED: chromium not installed (make deps): the seed's browser WebSocket client was not run")
	}
	t.Run("origin-not-allowed", func(t *testing.T) {
		page, read := seedPage(t)
		s := startServer(t)
		openInChromium(t, chromium, page+"/ws_client.html?ws=ws"+strings.TrimPrefix(s.base, "http")+"/stream")
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !strings.Contains(read(), "Disconnected"); {
			time.Sleep(100 * time.Millisecond)
		}
		if log := read(); !strings.Contains(log, "Disconnected from stream") || strings.Contains(log, "Connected to SecureVision stream") {
			t.Fatalf("a page from another origin was not refused:\n%s", log)
		}
		if n := s.wsClients(t); n != 0 {
			t.Fatalf("ws_clients %d after the refusal", n)
		}
	})
	t.Run("origin-allowed", func(t *testing.T) {
		page, read := seedPage(t)
		s := startServer(t, "SECUREVISION__API__CORS_ORIGINS="+page)
		openInChromium(t, chromium, page+"/ws_client.html?ws=ws"+strings.TrimPrefix(s.base, "http")+"/stream")
		s.waitClients(t, 1)
		s.ingest(t, seedEvents)
		wants := []string{"Connected to SecureVision stream", "pong: ping", "Face detected: Jane Smith", "Plate detected: ABC1234"}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			all := true
			for _, w := range wants {
				all = all && strings.Contains(read(), w)
			}
			if all {
				break
			}
		}
		dom := read()
		for _, want := range wants {
			if !strings.Contains(dom, want) {
				t.Fatalf("page log lacks %q:\n%s", want, dom)
			}
		}
	})
}

// seedPage serves testdata (the original service's browser client) and
// returns its origin and what the page has reported of its console log.
func seedPage(t *testing.T) (string, func() string) {
	var (
		mu     sync.Mutex
		report string
	)
	files := http.FileServer(http.Dir("testdata"))
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/report" {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			if len(b) > len(report) {
				report = string(b)
			}
			mu.Unlock()
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(page.Close)
	return page.URL, func() string { mu.Lock(); defer mu.Unlock(); return report }
}

// openInChromium opens url in headless Chromium until the test ends.
func openInChromium(t *testing.T, chromium, url string) {
	// The profile is not t.TempDir(): Chromium's helper processes may
	// still write to it for a moment after the browser is killed, which
	// would fail TempDir's cleanup.
	profile, err := os.MkdirTemp("", "sv-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+profile, url)
	// Its own process group, so that the helpers are killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for i := 0; os.RemoveAll(profile) != nil && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestWatchlistsFillIngestedPlates: plates posted without list_match are
// looked up in the watchlists (OCR confusions tolerated); an explicit
// list_match, null included, is kept.
func TestWatchlistsFillIngestedPlates(t *testing.T) {
	dir := t.TempDir()
	white, black := dir+"/white.txt", dir+"/black.txt"
	os.WriteFile(white, []byte("# residents\nABC1234\n"), 0o600)
	os.WriteFile(black, []byte("STOLEN1\n"), 0o600)
	s := startServer(t, "SECUREVISION__INGEST__PLATE_WHITELIST="+white, "SECUREVISION__INGEST__PLATE_BLACKLIST="+black)
	plate := func(text, extra string) string {
		return `{"type":"plate_read","frame_source_id":"cam","payload":{"plate_text":"` + text + `","confidence":0.9,"region":"US-CA"` + extra + `}}`
	}
	s.ingest(t, "["+plate("A8C-1234", "")+","+plate("5T0LEN1", "")+","+plate("XYZ999", "")+","+plate("ABC1234", `,"list_match":null`)+"]")
	want := []string{`"list_match":"whitelist"`, `"list_match":"blacklist"`, `"list_match":null`, `"list_match":null`}
	for i, w := range want {
		r, err := http.Get(fmt.Sprintf("%s/plates/%d", s.base, i+1))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(b), w) {
			t.Errorf("plate %d: %s, want %s", i+1, b, w)
		}
	}
}
