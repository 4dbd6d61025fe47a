package httpd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
)

// wsUpgrade are the headers of a browser's WebSocket handshake.
var wsUpgrade = []string{"Connection", "Upgrade", "Upgrade", "websocket",
	"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}

// isDetail reports whether b is FastAPI's {"detail": "<non-empty>"}.
func isDetail(b []byte) bool {
	var d struct {
		Detail string `json:"detail"`
	}
	return json.Unmarshal(b, &d) == nil && d.Detail != ""
}

// TestCrossOriginRefused: with auth off (the default) and no CORS list, a
// page on another site must not be able to append, run retention or back
// up (even with a form or text/plain body, which browsers send without a
// preflight), nor open the stream; the server's own pages and clients that
// send no Origin (curl, cameras, scripts) are served as before.
func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, func(o *httpd.Options) {
		o.Stream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
		o.Backup = func(context.Context) (any, error) { return map[string]string{"path": "x"}, nil }
	})
	self := e.srv.URL // http://127.0.0.1:port, the origin of the server's own pages
	host := strings.TrimPrefix(self, "http://")
	ev := faceJSON("a", time.Now().UnixMilli(), "x")
	const evil = "http://evil.example"
	with := func(kv ...string) []string { return kv }
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		code                     int
	}{
		{"ingest text/plain from another site", "POST", "/ingest", ev, with("Origin", evil, "Content-Type", "text/plain"), 403},
		{"ingest form from another site", "POST", "/ingest", ev, with("Origin", evil, "Content-Type", "application/x-www-form-urlencoded"), 403},
		{"ingest JSON from another site", "POST", "/ingest", ev, with("Origin", evil, "Content-Type", "application/json"), 403},
		{"ingest without Content-Type from another site", "POST", "/ingest", ev, with("Origin", evil), 403},
		{"ingest from an opaque origin", "POST", "/ingest", ev, with("Origin", "null"), 403},
		{"ingest from an empty Origin", "POST", "/ingest", ev, with("Origin", ""), 403},
		{"ingest from the same host on another port", "POST", "/ingest", ev, with("Origin", "http://127.0.0.1:1"), 403},
		{"ingest from the same host over https", "POST", "/ingest", ev, with("Origin", "https://"+host), 403},
		{"ingest from an origin with a path", "POST", "/ingest", ev, with("Origin", self+"/x"), 403},
		{"cleanup from another site", "POST", "/cleanup", "", with("Origin", evil), 403},
		{"backup from another site", "POST", "/backup", "", with("Origin", evil), 403},
		{"DELETE from another site", "DELETE", "/events", "", with("Origin", evil), 403},
		{"stream upgrade from another site", "GET", "/stream", "", append(with("Origin", evil), wsUpgrade...), 403},
		{"stream upgrade from an opaque origin", "GET", "/stream", "", append(with("Origin", "null"), wsUpgrade...), 403},

		{"ingest from the server's own page", "POST", "/ingest", ev, with("Origin", self, "Content-Type", "application/json"), 200},
		{"ingest from the own origin in upper case", "POST", "/ingest", ev, with("Origin", strings.ToUpper(self)), 200},
		{"ingest without Origin", "POST", "/ingest", ev, nil, 200},
		{"cleanup without Origin", "POST", "/cleanup", "", nil, 200},
		{"cleanup from the own origin", "POST", "/cleanup", "", with("Origin", self), 200},
		{"backup without Origin", "POST", "/backup", "", nil, 200},
		{"stream upgrade without Origin", "GET", "/stream", "", wsUpgrade, 299},
		{"stream upgrade from the own origin", "GET", "/stream", "", append(with("Origin", self), wsUpgrade...), 299},
		// Cross-origin reads stay CORS's business: the browser withholds
		// the answer from the page unless CORS allows it.
		{"GET events from another site", "GET", "/events", "", with("Origin", evil), 200},
		{"GET stream without upgrade from another site", "GET", "/stream", "", with("Origin", evil), 299},
	}
	stored := 0
	for _, tc := range cases {
		r := e.do(t, tc.method, tc.path, tc.body, tc.hdr...)
		if r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.code)
		}
		if r.code == 403 && !isDetail(r.body) {
			t.Errorf("%s: 403 body %s, want {\"detail\": ...}", tc.name, r.body)
		}
		if tc.path == "/ingest" && tc.code == 200 {
			stored++
		}
	}
	if got := e.store.Log.LastID(); got != uint64(stored) {
		t.Fatalf("%d events stored, want %d (only the allowed requests)", got, stored)
	}
}

// TestCrossOriginAllowList: SECUREVISION__API__CORS_ORIGINS extends the
// same-origin rule with the listed origins (with rs/cors's matching,
// wildcards included); "*" allows every origin.
func TestCrossOriginAllowList(t *testing.T) {
	ev := faceJSON("a", time.Now().UnixMilli(), "x")
	e := newEnv(t, func(o *httpd.Options) { o.CORSOrigins = []string{"https://dash.example", "https://*.ops.example"} })
	for origin, want := range map[string]int{
		"https://dash.example":    200,
		"https://DASH.example":    200,
		"https://a.ops.example":   200,
		"https://evil.example":    403,
		"http://dash.example":     403,
		"https://dash.example.ev": 403,
		"null":                    403,
		e.srv.URL:                 200,
	} {
		r := e.do(t, "POST", "/ingest", ev, "Origin", origin, "Content-Type", "application/json")
		if r.code != want {
			t.Errorf("Origin %s: %d %s, want %d", origin, r.code, r.body, want)
		}
		if want == 200 && origin != e.srv.URL && r.hdr.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("Origin %s: allowed without CORS headers: %v", origin, r.hdr)
		}
	}
	all := newEnv(t, func(o *httpd.Options) { o.CORSOrigins = []string{"*"} })
	for _, origin := range []string{"https://evil.example", "null"} {
		if r := all.do(t, "POST", "/ingest", ev, "Origin", origin); r.code != 200 {
			t.Errorf("CORS * and Origin %s: %d %s", origin, r.code, r.body)
		}
	}
}

// TestBodyContentType: bodies must be JSON or NDJSON (415 otherwise), so
// that no cross-site form or text/plain post, which browsers send without
// asking the server first, is ever decoded. A body without Content-Type is
// JSON, as in FastAPI; requests without a body need none.
func TestBodyContentType(t *testing.T) {
	e := newEnv(t, func(o *httpd.Options) {
		o.Backup = func(context.Context) (any, error) { return map[string]string{"path": "x"}, nil }
	})
	ev := faceJSON("a", time.Now().UnixMilli(), "x")
	nd := ev + "\n" + ev + "\n"
	cases := []struct {
		path, body, ct string
		want           string // status, and for 200 from /ingest the count
	}{
		{"/ingest", ev, "text/plain", "415"},
		{"/ingest", ev, "text/plain; charset=utf-8", "415"},
		{"/ingest", ev, "application/x-www-form-urlencoded", "415"},
		{"/ingest", ev, "multipart/form-data; boundary=x", "415"},
		{"/ingest", ev, "application/xml", "415"},
		{"/ingest", ev, "application/json, text/plain", "415"},
		{"/ingest", ev, "json", "415"},
		{"/cleanup", "x", "text/plain", "415"},
		{"/backup", "{}", "text/plain", "415"},

		{"/ingest", ev, "", "200 1"},
		{"/ingest", ev, "application/json", "200 1"},
		{"/ingest", ev, "application/json; charset=utf-8", "200 1"},
		{"/ingest", ev, "Application/JSON; Charset=UTF-8", "200 1"},
		{"/ingest", nd, "application/x-ndjson", "200 2"},
		{"/ingest", nd, "application/x-ndjson; charset=utf-8", "200 2"},
		{"/ingest", nd, "APPLICATION/X-NDJSON", "200 2"},
		{"/ingest", nd, "application/ndjson", "200 2"},
		{"/ingest", nd, "application/jsonl", "200 2"},
		{"/cleanup", "", "", "200"},
		{"/cleanup", "", "text/plain", "200"}, // no body: nothing to decode
		// axios (the original service's JavaScript client) sends this on
		// post(url, null).
		{"/cleanup", "", "application/x-www-form-urlencoded", "200"},
		{"/backup", "", "", "200"},
	}
	for _, tc := range cases {
		var hdr []string
		if tc.ct != "" {
			hdr = []string{"Content-Type", tc.ct}
		}
		r := e.do(t, "POST", tc.path, tc.body, hdr...)
		got := fmt.Sprint(r.code)
		if r.code == 200 && tc.path == "/ingest" {
			var res struct{ Count int }
			r.json(t, &res)
			got += fmt.Sprint(" ", res.Count)
		}
		if got != tc.want {
			t.Errorf("POST %s Content-Type %q: %s %s, want %s", tc.path, tc.ct, got, r.body, tc.want)
		}
		if r.code == 415 && !isDetail(r.body) {
			t.Errorf("POST %s Content-Type %q: 415 body %s", tc.path, tc.ct, r.body)
		}
	}
	// Chunked bodies (no Content-Length) are bodies too.
	for ct, want := range map[string]int{"text/plain": 415, "": 200} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/ingest", io.MultiReader(strings.NewReader(ev)))
		req.ContentLength = -1
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("chunked, Content-Type %q: %d, want %d", ct, res.StatusCode, want)
		}
	}
}
