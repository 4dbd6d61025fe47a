package httpd

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/securevision/events/internal/storetest"
)

// TestGuardCoversLaterRoutes: the Origin and body type checks are part of
// every route's chain, so a route added later (PUT, PATCH, DELETE) is
// covered without its own code.
func TestGuardCoversLaterRoutes(t *testing.T) {
	st := storetest.Open(t, storetest.Options{})
	s, err := New(Options{Log: st.Log, View: st.View, Ingest: st.Ingest})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodPut, http.MethodPatch, http.MethodDelete} {
		s.handle(m, "/later", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, m := range []string{http.MethodPut, http.MethodPatch, http.MethodDelete} {
		for _, tc := range []struct {
			origin, ct, body string
			want             int
		}{
			{"http://evil.example", "", "", 403},
			{"null", "application/json", "{}", 403},
			{"", "text/plain", "{}", 415},
			{srv.URL, "application/json", "{}", 204},
			{"", "", "", 204},
		} {
			req, _ := http.NewRequest(m, srv.URL+"/later", strings.NewReader(tc.body))
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("%s /later Origin %q Content-Type %q: %d, want %d", m, tc.origin, tc.ct, res.StatusCode, tc.want)
			}
		}
	}
}
func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		tls          bool
		want         bool
	}{
		{"http://a.example:8000", "a.example:8000", false, true},
		{"HTTP://A.Example:8000", "a.example:8000", false, true},
		{"http://a.example", "a.example:80", false, true},
		{"http://a.example:80", "a.example", false, true},
		{"https://a.example", "a.example:443", true, true},
		{"https://a.example", "a.example", true, true},
		{"http://[::1]:8000", "[::1]:8000", false, true},
		{"https://a.example:8000", "a.example:8000", false, false},
		{"http://a.example:8000", "a.example:8000", true, false},
		{"http://a.example:8080", "a.example:80", false, false},
		{"http://a.example:80", "a.example:8080", false, false},
		{"http://b.example:8000", "a.example:8000", false, false},
		{"http://a.example:8000/", "a.example:8000", false, false},
		{"http://user@a.example:8000", "a.example:8000", false, false},
		{"http://", "", false, false},
		{"null", "null", false, false},
		{"", "", false, false},
	} {
		r := httptest.NewRequest("POST", "/ingest", nil)
		r.Host = tc.host
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		} else {
			r.TLS = nil
		}
		if got := sameOrigin(tc.origin, r); got != tc.want {
			t.Errorf("sameOrigin(%q, Host %q, TLS %v) = %v, want %v", tc.origin, tc.host, tc.tls, got, tc.want)
		}
	}
}
