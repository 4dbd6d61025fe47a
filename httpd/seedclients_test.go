package httpd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
)

// seedFixture loads the events the examples of the original service's
// clients (testdata/seed) show, so that their output can be checked.
func seedFixture(t *testing.T) *env {
	e := newEnv(t, func(o *httpd.Options) { o.AuthToken = "your-token-here" })
	now := time.Now().UnixMilli()
	body := "[" + faceJSON("camera_front_door", now-60_000, "John Doe") + "," +
		plateJSON("camera_driveway", now-30_000, "ABC1234") + "," +
		`{"type":"plate_read","ts_ms":` + strconv.FormatInt(now-1000, 10) + `,"frame_source_id":"camera_driveway","payload":{"plate_text":"XYZ999","confidence":0.5,"region":"US-CA","list_match":null}}` + "]"
	if r := e.do(t, "POST", "/ingest", body, "Authorization", "Bearer your-token-here"); r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	return e
}

// pythonWithRequests finds an interpreter that has the requests package
// (Debian's python3-requests, installed by make deps).
func pythonWithRequests() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import requests").Run() == nil {
			return py
		}
	}
	return ""
}

func TestSeedPythonClient(t *testing.T) {
	py := pythonWithRequests()
	if py == "" {
		t.Skip("SKIPPED: no python3 with the requests package (make deps installs python3-requests): the seed's Python client was not run")
	}
	e := seedFixture(t)
	cmd := exec.Command(py, "testdata/seed/client.py")
	cmd.Env = append(os.Environ(), "BASE_URL="+e.srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client.py: %v\n%s", err, out)
	}
	want := `System OK: True
Events/second: 0.01
Face: John Doe (similarity: 0.92)
Plate: XYZ999 (None)
Plate: ABC1234 (whitelist)
Cleanup: {'deleted': 0, 'retention_days': 30}
`
	if string(out) != want {
		t.Fatalf("client.py printed:\n%s\nwant:\n%s", out, want)
	}
}

func TestSeedJavaScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node not installed: the seed's JavaScript client was not run")
	}
	if _, err := os.Stat(filepath.Join("testdata", "seed", "node_modules", "axios")); err != nil {
		t.Skip("SKIPPED: axios not installed (make deps runs npm ci in httpd/testdata/seed): the seed's JavaScript client was not run")
	}
	e := seedFixture(t)
	cmd := exec.Command(node, "testdata/seed/client.js")
	cmd.Env = append(os.Environ(), "BASE_URL="+e.srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client.js: %v\n%s", err, out)
	}
	want := `System OK: true
Face: John Doe (similarity: 0.92)
Plate: XYZ999 (unknown)
Plate: ABC1234 (whitelist)
Cleanup: {"deleted":0,"retention_days":30}
`
	if string(out) != want {
		t.Fatalf("client.js printed:\n%s\nwant:\n%s", out, want)
	}
}
