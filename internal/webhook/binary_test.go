package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/testbin"
)

// server is the real securevision binary, restartable on one store.
type server struct {
	t   *testing.T
	bin string
	dir string
	env []string
	s   *testbin.Server
	// logs are the logs of every run that stopped.
	logs strings.Builder
}

func (s *server) start() {
	s.t.Helper()
	srv, err := testbin.Start(context.Background(), testbin.Options{Binary: s.bin, StoreDir: s.dir, Env: s.env})
	if err != nil {
		s.t.Fatal(err)
	}
	s.s = srv
}

func (s *server) stop() {
	s.t.Helper()
	if err := s.s.Stop(); err != nil {
		s.t.Fatalf("stop: %v\n%s", err, s.s.Logs())
	}
	s.logs.WriteString(s.s.Logs())
}

func (s *server) call(method, path, body string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ingest posts n face events and returns nothing; it fails unless 200.
func (s *server) ingest(n int, name string) {
	s.t.Helper()
	body := []byte{'['}
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		ev := storetest.Face("cam", int64(1000+i), name)
		body = ingestbody.Append(body, &ev)
	}
	body = append(body, ']')
	if code, b := s.call("POST", "/ingest", string(body)); code != 200 {
		s.t.Fatalf("ingest: %d %s", code, b)
	}
}

// TestBinaryRestartWhileReceiverDown runs the real binary: the webhook
// routes are wired behind auth, ALLOW_LOOPBACK is read, and a server
// restarted (SIGTERM, then start) while its receiver is down delivers
// every event afterwards, in order, exactly once, signed; the secret
// never appears in the server's log.
func TestBinaryRestartWhileReceiverDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "securevision")
	if _, err := testbin.Build(context.Background(), "", bin); err != nil {
		t.Fatal(err)
	}
	srv := &server{t: t, bin: bin, dir: filepath.Join(t.TempDir(), "store"),
		env: []string{"SECUREVISION__API__AUTH_TOKEN=" + token}}
	rc := newReceiver(t)
	var up atomic.Bool
	rc.setRespond(func(int, http.ResponseWriter, *http.Request) int {
		if up.Load() {
			return 200
		}
		return 503
	})

	// Without ALLOW_LOOPBACK a loopback receiver is refused.
	srv.start()
	if code, b := srv.call("POST", "/webhooks", `{"url":"`+rc.srv.URL+`"}`); code != 422 {
		t.Fatalf("loopback without ALLOW_LOOPBACK: %d %s", code, b)
	}
	srv.stop()

	srv.env = append(srv.env, "SECUREVISION__WEBHOOKS__ALLOW_LOOPBACK=true")
	srv.start()
	code, b := srv.call("POST", "/webhooks", `{"url":"`+rc.srv.URL+`/in?k=v"}`)
	var v view
	if code != 201 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("create: %d %s", code, b)
	}
	srv.ingest(30, "before restart")
	rc.waitRequests(t, 1) // tried, refused with 503
	srv.stop()
	srv.start()
	srv.ingest(30, "after restart")
	if code, b := srv.call("GET", "/webhooks/"+v.ID, ""); code != 200 || !strings.Contains(string(b), `"cursor":0,`) ||
		!strings.Contains(string(b), `"lag":60,`) || strings.Contains(string(b), v.Secret) {
		t.Fatalf("after restart: %d %s", code, b)
	}
	rc.mu.Lock()
	rc.got = rc.got[:0]
	rc.mu.Unlock()
	up.Store(true)

	got := rc.waitRequests(t, 60)
	if d := slices.Compact(ids(t, got)); !slices.Equal(d, seq(1, 60)) {
		t.Fatalf("delivered %v", d)
	}
	for _, r := range got {
		if err := verifySpec(v.Secret, r.hdr, r.body, time.Now()); err != nil {
			t.Fatalf("%s: %v", r.msgID(), err)
		}
	}
	waitFor(t, "cursor 60", func() bool {
		_, b := srv.call("GET", "/webhooks/"+v.ID, "")
		return strings.Contains(string(b), `"cursor":60,`)
	})
	srv.stop()
	logs := srv.logs.String()
	key := strings.TrimPrefix(v.Secret, "whsec_")
	raw, _ := base64.StdEncoding.DecodeString(key)
	for _, leak := range []string{key, base64.RawURLEncoding.EncodeToString(raw), "k=v"} {
		if strings.Contains(logs, leak) {
			t.Fatalf("the server log contains %q", leak)
		}
	}
	if !strings.Contains(logs, "webhook created") {
		t.Fatalf("no lifecycle log line:\n%s", logs)
	}
}
