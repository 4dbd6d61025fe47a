package reliability

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/wstest"
)

const secToken = "s3cret-T0ken-value"

// TestSecurity runs the binary with a token and debug access logs: every
// protected route and /stream refuse a missing or wrong token; public routes
// do not need one; every response carries nosniff, /docs and /redoc a CSP;
// no token (right or wrong, header or ?token=) ever reaches the logs.
func TestSecurity(t *testing.T) {
	srv := startAbuseServer(t, "SECUREVISION__API__AUTH_TOKEN="+secToken, "SECUREVISION__LOG_LEVEL=DEBUG")
	const wrong = "wr0ng-Guess-token"
	do := func(method, path, auth string) *http.Response {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(string(EventJSON(0, "cam", "SEC1", time.Now().UnixMilli())))
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no X-Content-Type-Options: nosniff", method, path)
		}
		return r
	}
	protected := [][2]string{
		{"POST", "/ingest"}, {"POST", "/cleanup"}, {"POST", "/backup"}, {"GET", "/events"},
		{"GET", "/events/1"}, {"GET", "/events/1/snapshot.jpg"}, {"GET", "/faces/1"}, {"GET", "/plates/1"},
		{"GET", "/stream"}, {"GET", "/nope"},
	}
	for _, p := range protected {
		for _, auth := range []string{"", "Bearer " + wrong, "Basic " + secToken, "Bearer", "bearer  " + secToken + "x"} {
			r := do(p[0], p[1], auth)
			if r.StatusCode != http.StatusUnauthorized && !(p[1] == "/nope" && r.StatusCode == 404) {
				t.Errorf("%s %s with %q: %d, want 401", p[0], p[1], auth, r.StatusCode)
			}
			if r.StatusCode == 401 && r.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", p[0], p[1])
			}
		}
		r := do(p[0], p[1], "Bearer "+secToken)
		if r.StatusCode == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401", p[0], p[1])
		}
	}
	// ?token= is for /stream only: elsewhere it does not authenticate.
	if r := do("GET", "/events?token="+secToken, ""); r.StatusCode != 401 {
		t.Errorf("/events?token=: %d, want 401", r.StatusCode)
	}
	for _, p := range []string{"/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json"} {
		r := do("GET", p, "")
		if r.StatusCode != 200 {
			t.Errorf("public %s: %d", p, r.StatusCode)
		}
		if (p == "/docs" || p == "/redoc") && !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src") {
			t.Errorf("%s: Content-Security-Policy %q", p, r.Header.Get("Content-Security-Policy"))
		}
	}
	// /stream: 401 before the upgrade for a missing or wrong token, in the
	// header or the query; the right one in either place upgrades.
	ws := srv.URL + "/stream"
	dial := func(query string, hdr http.Header) int {
		c, resp, err := wstest.Dial(ws+query, wstest.Options{Header: hdr})
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatalf("dial %s: %v", query, err)
		}
		return resp.StatusCode
	}
	if code := dial("", nil); code == 404 {
		t.Log("/stream answers 404: stream checks skipped (not mounted)")
	} else {
		for _, q := range []string{"", "?token=" + wrong, "?token=", "?after=0&token=" + wrong, "?%74oken=" + wrong} {
			if code := dial(q, nil); code != 401 {
				t.Errorf("/stream%s: %d, want 401", q, code)
			}
		}
		if code := dial("", http.Header{"Authorization": {"Bearer " + wrong}}); code != 401 {
			t.Errorf("/stream with a wrong bearer: %d", code)
		}
		if code := dial("?after=0&token="+secToken, nil); code != 101 {
			t.Errorf("/stream?token=<right>: %d, want 101", code)
		}
		// Auth decodes the key, so the access log must too.
		if code := dial("?%74oken="+secToken, nil); code != 101 {
			t.Errorf("/stream?%%74oken=<right>: %d, want 101", code)
		}
		if code := dial("", http.Header{"Authorization": {"Bearer " + secToken}}); code != 101 {
			t.Errorf("/stream with the bearer: %d, want 101", code)
		}
	}
	// Nothing secret in the logs (access logs are on at DEBUG).
	time.Sleep(100 * time.Millisecond)
	logs := srv.Logs()
	if !strings.Contains(logs, `"http request"`) && !strings.Contains(logs, "http request") {
		t.Errorf("no access log lines at DEBUG: the check below proves nothing\n%s", logs)
	}
	for _, s := range []string{secToken, wrong} {
		if strings.Contains(logs, s) {
			i := strings.Index(logs, s)
			t.Errorf("token %q in the logs: …%s…", s, logs[max(0, i-200):min(len(logs), i+100)])
		}
	}
	fmt.Printf("security: %d log bytes checked, no token found\n", len(logs))
}

// TestSecurityForeignOrigin runs the binary as installed by default (auth
// off, no CORS list): requests a web page on another site could make a
// browser send (a text/plain or form post, a WebSocket upgrade) are
// refused before they store, delete or stream anything; the same requests
// without Origin, as curl and cameras send them, are served.
func TestSecurityForeignOrigin(t *testing.T) {
	srv := startAbuseServer(t)
	ev := string(EventJSON(0, "cam", "ORIGIN1", time.Now().UnixMilli()))
	post := func(path, origin, ct, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	for _, tc := range []struct {
		path, origin, ct, body string
		want                   int
	}{
		{"/ingest", "http://evil.example", "text/plain", ev, 403},
		{"/ingest", "http://evil.example", "application/x-www-form-urlencoded", ev, 403},
		{"/ingest", "null", "application/json", ev, 403},
		{"/cleanup", "http://evil.example", "", "", 403},
		{"/backup", "http://evil.example", "", "", 403},
		{"/ingest", "", "text/plain", ev, 415},
		{"/ingest", "", "", ev, 200},
		{"/ingest", srv.URL, "application/json", ev, 200},
		{"/cleanup", "", "", "", 200},
	} {
		if got := post(tc.path, tc.origin, tc.ct, tc.body); got != tc.want {
			t.Errorf("POST %s Origin %q Content-Type %q: %d, want %d", tc.path, tc.origin, tc.ct, got, tc.want)
		}
	}
	r, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if n := strings.Count(string(b), `"id":`); n != 2 {
		t.Errorf("%d events stored, want the 2 allowed ones: %s", n, b)
	}
	ws := srv.URL + "/stream?after=0"
	dial := func(origin string) int {
		c, resp, err := wstest.Dial(ws, wstest.Options{Origin: origin})
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatalf("dial with Origin %q: %v", origin, err)
		}
		return resp.StatusCode
	}
	if code := dial(""); code == 404 {
		t.Skip("/stream answers 404: stream checks skipped (not mounted)")
	}
	for origin, want := range map[string]int{"http://evil.example": 403, "null": 403, srv.URL: 101, "": 101} {
		if code := dial(origin); code != want {
			t.Errorf("/stream upgrade with Origin %q: %d, want %d", origin, code, want)
		}
	}
}
