package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/webhook"
)

const token = "test-token"

// env is a real store, a webhook manager over it and the real HTTP API
// (httpd, with auth on) serving the manager's routes.
type env struct {
	t    *testing.T
	dir  string
	st   *storetest.Store
	m    *webhook.Manager
	api  *httptest.Server
	opts webhook.Options
	mod  func(*webhook.Options)
}

// fastOptions makes back-off and flushing quick, so that retries and
// restarts run in milliseconds.
func fastOptions(o *webhook.Options) {
	o.AllowLoopback = true
	o.InitialBackoff = 5 * time.Millisecond
	o.MaxBackoff = 40 * time.Millisecond
	o.FlushInterval = 20 * time.Millisecond
	o.Timeout = 2 * time.Second
}

func newEnv(t *testing.T, mod func(*webhook.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), mod: mod}
	e.open()
	t.Cleanup(func() { e.shutdown() })
	return e
}

// open opens the store at e.dir, the manager and the API.
func (e *env) open() {
	t := e.t
	t.Helper()
	st, err := storetest.OpenErr(e.dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := webhook.Options{Log: st.Log, Subscribe: st.Subscribe, Registerer: st.Reg}
	fastOptions(&o)
	if e.mod != nil {
		e.mod(&o)
	}
	m, err := webhook.New(o)
	if err != nil {
		st.Core.Close()
		t.Fatal(err)
	}
	var routes []httpd.Route
	for _, r := range m.Routes() {
		routes = append(routes, httpd.Route{Method: r.Method, Path: r.Path, Handler: r.Handler})
	}
	api, err := httpd.New(httpd.Options{
		Log: st.Log, View: st.View, Ingest: st.Ingest, AuthToken: token,
		Routes: routes, Gatherer: st.Reg, Registerer: st.Reg,
		Health: []httpd.HealthSection{{Name: "webhooks", Value: m.Health}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.st, e.m, e.opts, e.api = st, m, o, httptest.NewServer(api.Handler())
}

// shutdown closes in the server's order: API, webhooks, core.
func (e *env) shutdown() {
	if e.m == nil {
		return
	}
	e.api.Close()
	if err := e.m.Close(); err != nil {
		e.t.Errorf("close webhooks: %v", err)
	}
	if err := e.st.Core.Close(); err != nil {
		e.t.Errorf("close core: %v", err)
	}
	e.m = nil
}

// restart closes everything and opens it again on the same store.
func (e *env) restart() {
	e.shutdown()
	e.open()
}

// call sends an authorised API request and returns status and body.
func (e *env) call(method, path, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// view is the API's webhook object.
type view = webhook.View

// create creates a webhook through the API and fails the test unless 201.
func (e *env) create(body string) view {
	e.t.Helper()
	code, b := e.call("POST", "/webhooks", body)
	if code != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", body, code, b)
	}
	var v view
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) get(id string) view {
	e.t.Helper()
	code, b := e.call("GET", "/webhooks/"+id, "")
	if code != http.StatusOK {
		e.t.Fatalf("get %s: %d %s", id, code, b)
	}
	var v view
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// eventJSON is GET /events/{id}'s body.
func (e *env) eventJSON(id uint64) []byte {
	e.t.Helper()
	code, b := e.call("GET", "/events/"+strconv.FormatUint(id, 10), "")
	if code != http.StatusOK {
		e.t.Fatalf("GET /events/%d: %d %s", id, code, b)
	}
	return b
}

// received is one request the receiver got.
type received struct {
	hdr  http.Header
	body []byte
	at   time.Time
}

// msgID is the request's webhook-id.
func (r received) msgID() string { return r.hdr.Get("webhook-id") }

// eventID is the event id in webhook-id (evt_<id>).
func (r received) eventID(t *testing.T) uint64 {
	t.Helper()
	s, ok := strings.CutPrefix(r.msgID(), "evt_")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		t.Fatalf("webhook-id %q is not evt_<id>", r.msgID())
	}
	return n
}

// receiver is a real HTTP server that records every request and answers
// with respond (200 when nil). respond gets the request's number (from
// 0) and may write headers before returning the status.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	// respond is read under mu.
	respond func(n int, w http.ResponseWriter, r *http.Request) int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, received{hdr: r.Header.Clone(), body: body, at: time.Now()})
		respond := rc.respond
		rc.mu.Unlock()
		code := http.StatusOK
		if respond != nil {
			code = respond(n, w, r)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setRespond(fn func(n int, w http.ResponseWriter, r *http.Request) int) {
	rc.mu.Lock()
	rc.respond = fn
	rc.mu.Unlock()
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitRequests waits until the receiver has at least n requests.
func (rc *receiver) waitRequests(t *testing.T, n int) []received {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d requests", n), func() bool { return len(rc.requests()) >= n })
	return rc.requests()
}

// verifySpec checks a delivery as the Standard Webhooks specification
// tells a receiver to, written here from the specification's text and
// independent of the server's signing code: the three headers are
// required; webhook-timestamp is integer Unix seconds within five minutes
// of now; the signed content is "<webhook-id>.<webhook-timestamp>.<body>";
// the key is the base64-decoded secret after its "whsec_" prefix; the
// signature is HMAC-SHA256, base64, and the header holds space-separated
// "<version>,<signature>" entries of which one "v1" entry must match,
// compared in constant time.
func verifySpec(secret string, hdr http.Header, body []byte, now time.Time) error {
	id, ts, sigs := hdr.Get("webhook-id"), hdr.Get("webhook-timestamp"), hdr.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %v", ts, err)
	}
	if d := now.Unix() - sec; d > 300 || d < -300 {
		return fmt.Errorf("webhook-timestamp %d is %d s from now", sec, d)
	}
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("secret lacks whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	content := []byte(id + "." + ts + ".")
	content = append(content, body...)
	mac := hmac.New(sha256.New, key)
	mac.Write(content)
	want := mac.Sum(nil)
	for _, entry := range strings.Split(sigs, " ") {
		ver, sig, ok := strings.Cut(entry, ",")
		if !ok || ver != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}

// verifyLibrary checks a delivery with the Standard Webhooks project's
// published Go library.
func verifyLibrary(secret string, hdr http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, hdr)
}

func verifyLibraryWebhook(secret string) (*standardwebhooks.Webhook, error) {
	return standardwebhooks.NewWebhook(secret)
}

// loopbackName finds a host name, other than localhost (refused by name
// at creation), that the system resolver maps to loopback only: this
// machine's own name usually is one (/etc/hosts).
func loopbackName(t *testing.T) string {
	t.Helper()
	names := []string{"ip6-localhost", "ip6-loopback"}
	if h, err := os.Hostname(); err == nil {
		names = append([]string{h}, names...)
	}
	for _, n := range names {
		addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", n)
		if err != nil || len(addrs) == 0 || n == "localhost" {
			continue
		}
		all := true
		for _, a := range addrs {
			all = all && a.Unmap().IsLoopback()
		}
		if all {
			return n
		}
	}
	t.Skipf("no host name other than localhost resolves to loopback here (tried %v)", names)
	return ""
}

// envelope is a delivery's body.
type envelope struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func decodeEnvelope(t *testing.T, b []byte) envelope {
	t.Helper()
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("delivery body %s: %v", b, err)
	}
	return env
}

// ids lists the event ids of requests, in arrival order.
func ids(t *testing.T, rs []received) []uint64 {
	t.Helper()
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.eventID(t)
	}
	return out
}

// seq returns a..b.
func seq(a, b uint64) []uint64 {
	var out []uint64
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}
