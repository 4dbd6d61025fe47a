package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr() != "127.0.0.1:8000" || !c.API.WSEnabled || c.API.AuthToken != "" || c.Events.DBURL != "pebble://data/events" ||
		c.Events.RetentionDays != 30 || c.Events.CleanupInterval != time.Hour || c.API.RateLimit != 0 || c.Ingest.FPS != 5 || c.Ingest.Cooldown != 10*time.Second ||
		c.Events.BackupDir != "data/backups" || c.Events.BackupKeep != 7 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = LoadConfig(map[string]string{
		"SECUREVISION__API__CORS_ORIGINS": "https://a.example,http://b.example:8080",
		"SECUREVISION__API__WS_ENABLED":   "false",
		"SECUREVISION__EVENTS__DB_URL":    "memory://",
	})
	if err != nil || len(c.API.CORSOrigins) != 2 || c.API.WSEnabled {
		t.Fatalf("parsed: %+v %v", c, err)
	}
}

// TestConfigRefusals: each bad value stops start-up with one line naming
// the variable, the value and what is allowed.
func TestConfigRefusals(t *testing.T) {
	cases := []struct{ key, val, want string }{
		{"SECUREVISION__API__PORT", "70000", "an integer from 1 to 65535"},
		{"SECUREVISION__API__PORT", "0", "an integer from 1 to 65535"},
		{"SECUREVISION__API__PORT", "http", "an integer from 1 to 65535"},
		{"SECUREVISION__API__HOST", " ", "a host name or IP address"},
		{"SECUREVISION__API__HOST", "]", "a host name or IP address"},
		{"SECUREVISION__API__HOST", "[::1]", "a host name or IP address"},
		{"SECUREVISION__API__HOST", "a b", "a host name or IP address"},
		{"SECUREVISION__API__WS_ENABLED", "maybe", "true or false"},
		{"SECUREVISION__API__RATE_LIMIT_PER_MINUTE", "-1", "an integer >= 0"},
		{"SECUREVISION__API__RATE_LIMIT_PER_MINUTE", "lots", "an integer >= 0"},
		{"SECUREVISION__API__CORS_ORIGINS", "example.com", "origin"},
		{"SECUREVISION__API__WS_MAX_CLIENTS", "0", "an integer >= 1"},
		{"SECUREVISION__EVENTS__RETENTION_DAYS", "-1", "an integer >= 0"},
		{"SECUREVISION__EVENTS__RETENTION_DAYS", "30d", "an integer >= 0"},
		{"SECUREVISION__EVENTS__CLEANUP_INTERVAL", "0s", "positive Go duration"},
		{"SECUREVISION__EVENTS__BACKUP_KEEP", "0", "an integer >= 1"},
		{"SECUREVISION__EVENTS__BACKUP_KEEP", "-3", "an integer >= 1"},
		{"SECUREVISION__EVENTS__BACKUP_KEEP", "all", "an integer >= 1"},
		{"SECUREVISION__EVENTS__BACKUP_KEEP", "2.5", "an integer >= 1"},
		{"SECUREVISION__EVENTS__CACHE_MB", "4", "an integer from 8 to 65536"},
		{"SECUREVISION__EVENTS__SOURCE_INDEX", "copies", "covering or keys"},
		{"SECUREVISION__DEBUG__PPROF_ADDR", "0.0.0.0:6060", "loopback"},
		{"SECUREVISION__DEBUG__PPROF_ADDR", ":6060", "loopback"},
		{"SECUREVISION__LOG_LEVEL", "LOUD", "DEBUG, INFO, WARN or ERROR"},
		{"SECUREVISION__LOG_LEVEL", "WARN+2", "DEBUG, INFO, WARN or ERROR"},
		{"SECUREVISION__EVENTS__CLEANUP_INTERVAL", "hourly", "positive Go duration"},
		{"SECUREVISION__EVENTS__DB_URL", "sqlite:///data/events.db", "pebble:///data/events"},
		{"SECUREVISION__EVENTS__DB_URL", "postgres://db", "unsupported store URL"},
		{"SECUREVISION__INGEST__FPS", "0", "a number > 0"},
		{"SECUREVISION__INGEST__FPS", "NaN", "a number > 0"},
		{"SECUREVISION__INGEST__SIMILARITY_THRESHOLD", "1.5", "a number from 0 up to, not including, 1"},
		{"SECUREVISION__INGEST__SIMILARITY_THRESHOLD", "1", "a number from 0 up to, not including, 1"},
		{"SECUREVISION__INGEST__SIMILARITY_THRESHOLD", "NaN", "a number from 0 up to, not including, 1"},
		{"SECUREVISION__INGEST__COOLDOWN", "-1s", "a Go duration >= 0"},
	}
	for _, tc := range cases {
		_, err := LoadConfig(map[string]string{tc.key: tc.val})
		if err == nil {
			t.Errorf("%s=%q accepted", tc.key, tc.val)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.key) || !strings.Contains(msg, fmt.Sprintf("%q", tc.val)) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s=%q: %q", tc.key, tc.val, msg)
		}
	}
	// The command prints it on one line and exits 2.
	var stderr bytes.Buffer
	code := runServe(context.Background(), nil, []string{"SECUREVISION__API__PORT=70000"}, io.Discard, &stderr)
	if code != 2 || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 || !strings.Contains(stderr.String(), "SECUREVISION__API__PORT") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestServeShutsDownInOrderAndKeepsData runs the real server, appends,
// cancels (as SIGTERM does), then verifies the store offline and serves
// it again with ids continuing.
func TestServeShutsDownInOrderAndKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	port := freePort(t)
	environ := []string{
		"SECUREVISION__EVENTS__DB_URL=pebble://" + dir,
		fmt.Sprintf("SECUREVISION__API__PORT=%d", port),
	}
	start := func() (context.CancelFunc, chan int) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- runServe(ctx, nil, environ, io.Discard, io.Discard) }()
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		for i := 0; i < 100; i++ {
			if r, err := http.Get(base + "/health"); err == nil {
				r.Body.Close()
				return cancel, done
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("server did not start")
		return nil, nil
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cancel, done := start()
	body := fmt.Sprintf(`{"type":"plate_read","ts_ms":%d,"frame_source_id":"cam","payload":{"plate_text":"ABC1234","confidence":0.9,"region":"US-CA"}}`, time.Now().UnixMilli())
	r, err := http.Post(base+"/ingest", "application/json", strings.NewReader(body))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("ingest: %v %v", r, err)
	}
	r.Body.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	var out, errb bytes.Buffer
	if code := runVerify([]string{"--store", "pebble://" + dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok: 1 events") {
		t.Fatalf("verify exit %d: %s %s", code, out.String(), errb.String())
	}
	cancel, done = start()
	defer func() { cancel(); <-done }()
	r, err = http.Post(base+"/ingest", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != `{"count":1,"first_id":2,"last_id":2}` {
		t.Fatalf("after restart: %s", b)
	}
}

func TestVerifyRefusesMissingStore(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runVerify([]string{"--store", filepath.Join(t.TempDir(), "nope")}, &out, &errb); code != 2 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
