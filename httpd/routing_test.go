package httpd_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// noRedirect does not follow redirects, to see them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) raw(t *testing.T, method, path, body string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

// TestRoutesCaseSensitive: routes match exactly, as in FastAPI: another
// case or a doubled slash is 404 Not Found, never a redirect to a route.
// A trailing slash is redirected with 307 to the route without it (FastAPI's
// redirect_slashes), with a relative Location.
func TestRoutesCaseSensitive(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, "POST", "/ingest", faceJSON("a", time.Now().UnixMilli(), "x"))
	for _, rq := range [][2]string{
		{"GET", "/EVENTS"}, {"GET", "/Events?limit=1"}, {"GET", "/events/1/SNAPSHOT.jpg"}, {"GET", "/FACES/1"},
		{"GET", "/Health"}, {"POST", "/INGEST"}, {"POST", "/Cleanup"}, {"GET", "//events"}, {"GET", "/events//1"},
		{"GET", "/nope/"}, {"GET", "//evil.example/"}, {"GET", "///evil.example/"}, {"GET", "/EVENTS/"},
	} {
		r := e.raw(t, rq[0], rq[1], "")
		if r.code != 404 || string(r.body) != `{"detail":"Not Found"}` || r.hdr.Get("Location") != "" {
			t.Errorf("%s %s: %d %s Location %q, want 404 Not Found", rq[0], rq[1], r.code, r.body, r.hdr.Get("Location"))
		}
	}
	for _, rq := range [][3]string{
		{"GET", "/events/", "/events"},
		{"GET", "/events/?limit=5&type=face_match", "/events?limit=5&type=face_match"},
		{"GET", "/faces/1/", "/faces/1"},
		{"GET", "/health/", "/health"},
		{"POST", "/ingest/", "/ingest"},
	} {
		r := e.raw(t, rq[0], rq[1], "")
		if r.code != http.StatusTemporaryRedirect || r.hdr.Get("Location") != rq[2] {
			t.Errorf("%s %s: %d Location %q, want 307 to %s", rq[0], rq[1], r.code, r.hdr.Get("Location"), rq[2])
		}
	}
	// Clients that follow it (requests, axios, Go) resend the body on 307.
	if r := e.do(t, "POST", "/ingest/", faceJSON("a", time.Now().UnixMilli(), "y")); r.code != 200 || string(r.body) != `{"count":1,"first_id":2,"last_id":2}` {
		t.Fatalf("POST /ingest/ followed: %d %s", r.code, r.body)
	}
}

// TestNextLinkIgnoresHost: the next-page link is a relative reference: the
// Host header, which the client chooses, is never echoed into it.
func TestNextLinkIgnoresHost(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now().UnixMilli()
	e.do(t, "POST", "/ingest", "["+faceJSON("a", now, "1")+","+faceJSON("a", now, "2")+","+faceJSON("a", now, "3")+"]")
	for _, host := range []string{"evil.example", "evil.example:8000", ""} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/events?limit=1&source=a", nil)
		if host != "" {
			req.Host = host
		}
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got, want := res.Header.Get("Link"), `</events?before=3&limit=1&source=a>; rel="next"`; got != want {
			t.Errorf("Host %q: Link %s, want %s", host, got, want)
		}
	}
}
