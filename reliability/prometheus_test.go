package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/testbin"
)

// TestPrometheusScrape runs Debian's prometheus against the real binary
// (1 s scrape interval), waits until the target is up, ingests events and
// reads securevision_ingest_appended_events_total back through the query
// API. It also runs `promtool check metrics` on /metrics.
func TestPrometheusScrape(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus binary not found (make deps installs Debian's prometheus): real-scrape test NOT RUN")
	}
	srv := startAbuseServer(t)
	dir := t.TempDir()
	port, err := testbin.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: securevision
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, srv.Port)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var plog bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = &plog, &plog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	}()
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/", port)
	getJSON := func(path string, v any) error {
		r, err := http.Get(api + path)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			return fmt.Errorf("%s: %d %s", path, r.StatusCode, b)
		}
		return json.Unmarshal(b, v)
	}
	waitFor := func(what string, f func() (bool, error)) {
		deadline := time.Now().Add(60 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			ok, err := f()
			if ok {
				return
			}
			last = err
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: not within 60s (last error %v)", what, last)
	}
	waitFor("target up", func() (bool, error) {
		var tr struct {
			Data struct {
				ActiveTargets []struct {
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON("targets", &tr); err != nil {
			return false, err
		}
		for _, a := range tr.Data.ActiveTargets {
			if a.Health == "up" {
				return true, nil
			}
			if a.LastError != "" {
				return false, fmt.Errorf("%s", a.LastError)
			}
		}
		return false, nil
	})

	// 7 plate_read and 3 face_match events.
	var body bytes.Buffer
	body.WriteByte('[')
	for i := 0; i < 10; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		n := 0
		if i >= 7 {
			n = 1
		}
		body.Write(EventJSON(n, "cam", fmt.Sprintf("P%d", i), time.Now().UnixMilli()))
	}
	body.WriteByte(']')
	if code, _, raw, err := Ingest(context.Background(), http.DefaultClient, srv.URL, "", body.Bytes(), false); err != nil || code != 200 {
		t.Fatalf("ingest: %d %s %v", code, raw, err)
	}
	query := func(q string) (float64, error) {
		var qr struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := getJSON("query?query="+strings.ReplaceAll(q, " ", "%20"), &qr); err != nil {
			return 0, err
		}
		if len(qr.Data.Result) != 1 {
			return 0, fmt.Errorf("%d series", len(qr.Data.Result))
		}
		s, _ := qr.Data.Result[0].Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	var got float64
	waitFor("appended total 10", func() (bool, error) {
		v, err := query("sum(securevision_ingest_appended_events_total)")
		got = v
		return err == nil && v == 10, err
	})
	plates, err := query(`securevision_ingest_appended_events_total{type="plate_read"}`)
	if err != nil || plates != 7 {
		t.Fatalf("plate_read total %v (%v), want 7", plates, err)
	}
	t.Logf("prometheus reads securevision_ingest_appended_events_total = %v (plate_read %v)", got, plates)

	// promtool check metrics on the exposition.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not found: metrics lint NOT RUN")
		return
	}
	r, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := io.ReadAll(r.Body)
	r.Body.Close()
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(exp)
	out, err := check.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
