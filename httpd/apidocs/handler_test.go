package apidocs

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/julienschmidt/httprouter"
)

// newTestRouter mounts the docs on an httprouter Router beside a stub for
// every documented API route, as httpd does: httprouter panics on
// conflicting routes, so this also proves the docs paths and the API's
// (":event_id" wildcards included) can coexist.
func newTestRouter(t *testing.T) http.Handler {
	t.Helper()
	r := httprouter.New()
	for _, op := range Operations() {
		r.Handler(op.Method, op.Path, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}))
	}
	Register(r.Handler)
	return r
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	externalURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	srcHref     = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
)

func TestPages(t *testing.T) {
	h := newTestRouter(t)
	for _, p := range []string{DocsPath, RedocPath} {
		t.Run(p, func(t *testing.T) {
			res := get(t, h, p)
			b := body(t, res)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			for k, want := range map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Content-Security-Policy": CSP(p),
				"X-Content-Type-Options":  "nosniff",
				"Cache-Control":           "no-cache",
			} {
				if got := res.Header.Get(k); got != want || want == "" {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if m := externalURL.Find(b); m != nil {
				t.Errorf("page references an external URL %q", m)
			}
			if bytes.Contains(b, []byte("<script>")) || bytes.Contains(b, []byte(" style=")) {
				t.Error("page has inline script or style")
			}
			refs := srcHref.FindAllSubmatch(b, -1)
			if len(refs) < 2 {
				t.Fatalf("page references %d resources", len(refs))
			}
			for _, ref := range refs {
				u := string(ref[1])
				if u == "data:," { // the empty favicon
					continue
				}
				if !strings.HasPrefix(u, AssetsPath) || !strings.Contains(u, "?v=") {
					t.Errorf("resource %q is not a versioned asset", u)
				}
				if res := get(t, h, u); res.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d", u, res.StatusCode)
				}
			}
		})
	}
	// Both UIs load the live spec from /openapi.json.
	if b := body(t, get(t, h, RedocPath)); !bytes.Contains(b, []byte(`spec-url="/openapi.json"`)) {
		t.Error("/redoc does not point at /openapi.json")
	}
	init := body(t, get(t, h, AssetsPath+"swagger-init.js"))
	if !bytes.Contains(init, []byte(`url: "/openapi.json"`)) || !bytes.Contains(init, []byte("validatorUrl: null")) {
		t.Errorf("swagger-init.js does not load /openapi.json offline:\n%s", init)
	}
	if m := externalURL.Find(init); m != nil {
		t.Errorf("swagger-init.js references %q", m)
	}
}

// TestCSP: every source is 'self', a quoted keyword or a data:/blob: scheme
// — never a host.
func TestCSP(t *testing.T) {
	for _, p := range []string{DocsPath, RedocPath} {
		csp := CSP(p)
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for dir := range strings.SplitSeq(csp, ";") {
			fields := strings.Fields(dir)
			for _, src := range fields[1:] {
				if !strings.HasPrefix(src, "'") && src != "data:" && src != "blob:" {
					t.Errorf("%s: %s allows %q", p, fields[0], src)
				}
				if src == "'unsafe-eval'" || fields[0] == "script-src" && src != "'self'" {
					t.Errorf("%s: %s allows %s", p, fields[0], src)
				}
			}
		}
	}
	if CSP("/events") != "" {
		t.Error("CSP for a non-docs path")
	}
}

func TestAssets(t *testing.T) {
	h := newTestRouter(t)
	for name, ctype := range map[string]string{
		"swagger-ui.css":           "text/css; charset=utf-8",
		"swagger-ui-bundle.js":     "text/javascript; charset=utf-8",
		"swagger-init.js":          "text/javascript; charset=utf-8",
		"redoc.standalone.js":      "text/javascript; charset=utf-8",
		"THIRD_PARTY_LICENSES.txt": "text/plain; charset=utf-8",
	} {
		t.Run(name, func(t *testing.T) {
			plain := get(t, h, AssetsPath+name)
			raw := body(t, plain)
			if plain.StatusCode != http.StatusOK || len(raw) == 0 {
				t.Fatalf("status %d, %d bytes", plain.StatusCode, len(raw))
			}
			if got := plain.Header.Get("Content-Type"); got != ctype {
				t.Errorf("Content-Type = %q, want %q", got, ctype)
			}
			if got := plain.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if got := plain.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q", got)
			}
			if plain.Header.Get("Content-Encoding") != "" {
				t.Error("compressed without Accept-Encoding")
			}

			gz := get(t, h, AssetsPath+name, "Accept-Encoding", "br;q=1.0, gzip;q=0.8")
			if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Vary") != "Accept-Encoding" {
				t.Fatalf("gzip not negotiated: %v", gz.Header)
			}
			zr, err := gzip.NewReader(gz.Body)
			if err != nil {
				t.Fatal(err)
			}
			unz, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(unz, raw) {
				t.Errorf("gzip body differs from identity body (err %v)", err)
			}
			if gz.Header.Get("ETag") == plain.Header.Get("ETag") {
				t.Error("gzip and identity share an ETag")
			}

			nm := get(t, h, AssetsPath+name, "If-None-Match", plain.Header.Get("ETag"))
			if nm.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", nm.StatusCode)
			}
		})
	}
	lic := body(t, get(t, h, AssetsPath+"THIRD_PARTY_LICENSES.txt"))
	for _, s := range []string{"Apache License", "The MIT License", "SmartBear", "Rebilly"} {
		if !bytes.Contains(lic, []byte(s)) {
			t.Errorf("THIRD_PARTY_LICENSES.txt lacks %q", s)
		}
	}
	if res := get(t, AssetsHandler(), AssetsPath+"nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: status %d", res.StatusCode)
	}
	if res := get(t, AssetsHandler(), AssetsPath+"swagger-ui.css"); res.StatusCode != http.StatusOK {
		t.Errorf("AssetsHandler: status %d", res.StatusCode)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"GZIP":                true,
		"deflate, gzip;q=1.0": true,
		"gzip;q=0":            false,
		"gzip; q=0.000":       false,
		"br, identity":        false,
		"x-gzip":              false,
	} {
		if got := AcceptsGzip(ae); got != want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

func TestSpecHandler(t *testing.T) {
	h := newTestRouter(t)
	res := get(t, h, SpecPath)
	b := body(t, res)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !bytes.Equal(b, Spec()) {
		t.Error("served document differs from Spec()")
	}
	if res := get(t, h, SpecPath, "If-None-Match", res.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
	// The stubs answer the API routes: the docs did not shadow them.
	for _, p := range []string{"/events", "/faces/7", "/events/7/snapshot.jpg"} {
		if res := get(t, h, p); res.StatusCode != http.StatusTeapot {
			t.Errorf("%s: status %d, want the API stub", p, res.StatusCode)
		}
	}
}
