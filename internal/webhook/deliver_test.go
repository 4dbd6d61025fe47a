package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/webhook"
)

// TestDeliverSigned: a webhook created through the API receives every
// event after its cursor, in order, as the Standard Webhooks envelope,
// with data byte-identical to GET /events/{id}, signed so that both an
// independent verifier and the published library accept it.
func TestDeliverSigned(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	e.st.Append(t, storetest.Face("cam1", 1000, "before"))

	v := e.create(`{"url": "` + rc.srv.URL + `/hook?x=1", "description": "front door"}`)
	if !strings.HasPrefix(v.Secret, "whsec_") {
		t.Fatalf("secret %q lacks whsec_", v.Secret)
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v.Secret, "whsec_")); err != nil || len(key) != 32 {
		t.Fatalf("secret is not base64 of 32 bytes: %d bytes, %v", len(key), err)
	}
	if v.Cursor != 1 || v.State != "active" || v.Description != "front door" || v.Types != nil || v.ListMatch != nil {
		t.Fatalf("created: %+v", v)
	}

	plate := storetest.Plate("cam2", 2000, "ABC123")
	plate.Plate.ListMatch, plate.Plate.ListMatchSet = "blacklist", true
	e.st.Append(t, storetest.Face("cam1", 1500, "Ann \"quoted\" ✓"), plate)

	got := rc.waitRequests(t, 2)
	if len(got) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(got))
	}
	for i, r := range got {
		id := uint64(i + 2)
		if r.msgID() != "evt_"+strconv.FormatUint(id, 10) {
			t.Errorf("delivery %d: webhook-id %q", i, r.msgID())
		}
		if err := verifySpec(v.Secret, r.hdr, r.body, time.Now()); err != nil {
			t.Errorf("delivery %d: independent verifier: %v", i, err)
		}
		if err := verifyLibrary(v.Secret, r.hdr, r.body); err != nil {
			t.Errorf("delivery %d: standard-webhooks library: %v", i, err)
		}
		if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		env := decodeEnvelope(t, r.body)
		want := e.eventJSON(id)
		if string(env.Data) != string(want) {
			t.Errorf("delivery %d data:\n got %s\nwant %s", i, env.Data, want)
		}
		var ev struct {
			Type      string `json:"type"`
			CreatedAt string `json:"created_at"`
		}
		if err := json.Unmarshal(want, &ev); err != nil {
			t.Fatal(err)
		}
		if env.Type != ev.Type || env.Timestamp != ev.CreatedAt {
			t.Errorf("delivery %d: type %q timestamp %q, event has %q %q", i, env.Type, env.Timestamp, ev.Type, ev.CreatedAt)
		}
	}
	// A wrong secret or a changed body must not verify: the verifier
	// can fail.
	if verifySpec("whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)), got[0].hdr, got[0].body, time.Now()) == nil {
		t.Fatal("verifier accepted a wrong secret")
	}
	if verifySpec(v.Secret, got[0].hdr, append([]byte(" "), got[0].body...), time.Now()) == nil {
		t.Fatal("verifier accepted a changed body")
	}

	waitFor(t, "cursor 3", func() bool { return e.get(v.ID).Cursor == 3 })
	g := e.get(v.ID)
	if g.Secret != "" || g.Lag != 0 || g.LastSuccessAt == nil || g.Failures != 0 {
		t.Fatalf("GET: %+v", g)
	}
	code, b := e.call("GET", "/webhooks", "")
	if code != 200 || strings.Contains(string(b), v.Secret) || !strings.Contains(string(b), v.ID) {
		t.Fatalf("list: %d %s", code, b)
	}
	if n := testutil.ToFloat64(e.m.DeliveriesCounter(v.ID, "success")); n != 2 {
		t.Fatalf("deliveries_total{success} = %v", n)
	}
	code, b = e.call("GET", "/metrics", "")
	if code != 200 || !strings.Contains(string(b), `securevision_webhook_lag_events{webhook="`+v.ID+`"} 0`) {
		t.Fatalf("metrics lack the lag:\n%s", b)
	}
	code, b = e.call("GET", "/health", "")
	if code != 200 || !strings.Contains(string(b), `"webhooks":{"webhooks":1,`) {
		t.Fatalf("health: %s", b)
	}
}

// TestSignatureMatchesLibrary: the server's signer and the published
// library's produce the same header for the same input.
func TestSignatureMatchesLibrary(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := []byte(`{"type":"face_match","timestamp":"2024-01-01T00:00:00.000Z","data":{"id":7}}`)
	ts := time.Unix(1704067200, 0)
	lib, err := verifyLibraryWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	want, err := lib.Sign("evt_7", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhook.Sign(key, "evt_7", ts.Unix(), body); got != want {
		t.Fatalf("signature %q, library %q", got, want)
	}
}

// TestAuthRequired: the routes need the token when auth is on.
func TestAuthRequired(t *testing.T) {
	e := newEnv(t, nil)
	for _, r := range e.m.Routes() {
		path := strings.ReplaceAll(r.Path, ":webhook_id", "wh_0000000000000000")
		req, _ := http.NewRequest(r.Method, e.api.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %d", r.Method, path, resp.StatusCode)
		}
	}
}

// TestFilters: types, sources and list_match select what is delivered;
// events that do not match still move the cursor.
func TestFilters(t *testing.T) {
	e := newEnv(t, nil)
	rcPlates, rcCam, rcBlack, rcAll, rcUnknown := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	plates := e.create(`{"url":"` + rcPlates.srv.URL + `","types":["plate_read"]}`)
	e.create(`{"url":"` + rcCam.srv.URL + `","sources":["cam2","cam3"]}`)
	black := e.create(`{"url":"` + rcBlack.srv.URL + `","list_match":"blacklist","types":null,"sources":[]}`)
	e.create(`{"url":"` + rcAll.srv.URL + `"}`)
	unknown := e.create(`{"url":"` + rcUnknown.srv.URL + `","person_name":"unknown"}`)
	if unknown.PersonName == nil || *unknown.PersonName != "unknown" {
		t.Fatalf("person_name not echoed: %+v", unknown)
	}
	if black.ListMatch == nil || *black.ListMatch != "blacklist" || black.Sources != nil || plates.Types[0] != "plate_read" {
		t.Fatalf("filters echoed: %+v %+v", black, plates)
	}

	var evs []ingest.Event
	for i := range 30 {
		src := fmt.Sprintf("cam%d", i%4)
		if i%2 == 0 {
			name := "p"
			if i%6 == 0 {
				name = "unknown"
			}
			evs = append(evs, storetest.Face(src, int64(1000+i), name))
			continue
		}
		p := storetest.Plate(src, int64(1000+i), "P"+strconv.Itoa(i))
		p.Plate.ListMatchSet = true
		switch i % 3 {
		case 0:
			p.Plate.ListMatch = "blacklist"
		case 1:
			p.Plate.ListMatch = "whitelist"
		}
		// An extra payload field that looks like the filter must not
		// make a non-blacklisted plate match.
		p.Extra = map[string]json.RawMessage{"z": json.RawMessage(`{"list_match":"blacklist"}`)}
		evs = append(evs, p)
	}
	e.st.Append(t, evs...)

	want := func(pred func(i int) bool) []uint64 {
		var out []uint64
		for i := range 30 {
			if pred(i) {
				out = append(out, uint64(i+1))
			}
		}
		return out
	}
	cases := []struct {
		name string
		rc   *receiver
		want []uint64
	}{
		{"types", rcPlates, want(func(i int) bool { return i%2 == 1 })},
		{"sources", rcCam, want(func(i int) bool { return i%4 == 2 || i%4 == 3 })},
		{"list_match", rcBlack, want(func(i int) bool { return i%2 == 1 && i%3 == 0 })},
		{"none", rcAll, want(func(int) bool { return true })},
		{"person_name", rcUnknown, want(func(i int) bool { return i%6 == 0 })},
	}
	for _, c := range cases {
		got := ids(t, c.rc.waitRequests(t, len(c.want)))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Every webhook's cursor reaches the end, matching or not.
	waitFor(t, "every cursor at 30", func() bool {
		code, b := e.call("GET", "/webhooks", "")
		var vs []view
		if code != 200 || json.Unmarshal(b, &vs) != nil {
			return false
		}
		for _, v := range vs {
			if v.Cursor != 30 || v.Lag != 0 {
				return false
			}
		}
		return len(vs) == 5
	})
	for _, c := range cases {
		if n := len(c.rc.requests()); n != len(c.want) {
			t.Errorf("%s: %d deliveries, want %d", c.name, n, len(c.want))
		}
	}
}

// TestRetriesInOrder: 500, 503 and a timeout are retried with the same
// webhook-id and a fresh signature each time; later events wait; the
// webhook reports its failures while retrying.
func TestRetriesInOrder(t *testing.T) {
	e := newEnv(t, func(o *webhook.Options) { o.Timeout = 200 * time.Millisecond })
	rc := newReceiver(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the receiver closes: it waits for handlers
	var stuck atomic.Bool
	rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		switch n {
		case 0: // event 1
			return 500
		case 1:
			return 503
		case 2: // no answer until the server gives up
			<-r.Context().Done()
			return 200
		case 4: // event 2
			return 502
		case 5:
			stuck.Store(true)
			<-release
			return 502
		}
		return 200
	})
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	e.st.Append(t, storetest.Face("c", 1, "a"), storetest.Face("c", 2, "b"), storetest.Face("c", 3, "c"))
	waitFor(t, "the 6th attempt", func() bool { return stuck.Load() })
	g := e.get(v.ID)
	if g.Failures != 1 || g.LastError == nil || *g.LastError != "HTTP 502 Bad Gateway" || g.Cursor != 1 || g.Lag != 2 {
		t.Fatalf("while retrying: %+v (last_error %v)", g, deref(g.LastError))
	}
	unblock()
	got := rc.waitRequests(t, 8)
	if g := ids(t, got); !slices.Equal(g, []uint64{1, 1, 1, 1, 2, 2, 2, 3}) {
		t.Fatalf("ids %v", g)
	}
	for i, r := range got {
		if err := verifySpec(v.Secret, r.hdr, r.body, time.Now()); err != nil {
			t.Fatalf("attempt %d (%s): %v", i, r.msgID(), err)
		}
		if i > 0 && got[i-1].msgID() == r.msgID() && string(got[i-1].body) != string(r.body) {
			t.Fatalf("retry %d of %s has another body", i, r.msgID())
		}
	}
	waitFor(t, "cursor 3", func() bool { return e.get(v.ID).Cursor == 3 })
	if g := e.get(v.ID); g.Failures != 0 || g.LastError == nil || g.NextRetryAt != nil || g.LastSuccessAt == nil {
		t.Fatalf("after recovery: %+v", g)
	}
	for outcome, want := range map[string]float64{"success": 3, "http_error": 4, "timeout": 1} {
		if n := testutil.ToFloat64(e.m.DeliveriesCounter(v.ID, outcome)); n != want {
			t.Errorf("deliveries_total{%s} = %v, want %v", outcome, n, want)
		}
	}
	if len(rc.requests()) != 8 {
		t.Fatalf("%d requests, want 8", len(rc.requests()))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestRetryAfter: a receiver's Retry-After (seconds, then an HTTP date)
// sets the delay even though the configured back-off is milliseconds.
func TestRetryAfter(t *testing.T) {
	for _, form := range []string{"seconds", "date"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			rc := newReceiver(t)
			rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
				if n > 0 {
					return 204
				}
				if form == "seconds" {
					w.Header().Set("Retry-After", "1")
				} else {
					// Two seconds ahead, to the second: at least one
					// second from now.
					w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
				}
				return 429
			})
			e.create(`{"url":"` + rc.srv.URL + `"}`)
			e.st.Append(t, storetest.Face("c", 1, "a"))
			got := rc.waitRequests(t, 2)
			if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
				t.Fatalf("retried after %v despite Retry-After", gap)
			}
		})
	}
}

// TestBackoffSchedule: the delay doubles from InitialBackoff up to
// MaxBackoff, jittered within [d/2, d].
func TestBackoffSchedule(t *testing.T) {
	e := newEnv(t, func(o *webhook.Options) {
		o.InitialBackoff, o.MaxBackoff = 2*time.Second, 5*time.Minute
	})
	d := 2 * time.Second
	for n := 1; n <= 12; n++ {
		for range 50 {
			got := time.Duration(e.m.BackoffDelay(n))
			if got < d/2 || got > d {
				t.Fatalf("failure %d: delay %v outside [%v, %v]", n, got, d/2, d)
			}
		}
		d = min(2*d, 5*time.Minute)
	}
}

// TestGoneDisables: 410 disables the webhook, durably; enable resumes it
// from where it stopped.
func TestGoneDisables(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			return http.StatusGone
		}
		return 200
	})
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	e.st.Append(t, storetest.Face("c", 1, "a"), storetest.Face("c", 2, "b"), storetest.Face("c", 3, "c"))
	waitFor(t, "disabled", func() bool { return e.get(v.ID).State == "disabled" })
	g := e.get(v.ID)
	if g.Cursor != 1 || g.LastError == nil || !strings.Contains(*g.LastError, "410") {
		t.Fatalf("disabled: %+v", g)
	}
	e.restart()
	e.st.Append(t, storetest.Face("c", 4, "d"))
	if g := e.get(v.ID); g.State != "disabled" || g.Cursor != 1 {
		t.Fatalf("after restart: %+v", g)
	}
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("a disabled webhook was called: %d requests", n)
	}
	code, b := e.call("POST", "/webhooks/"+v.ID+"/enable", "")
	if code != 200 || !strings.Contains(string(b), `"state":"active"`) {
		t.Fatalf("enable: %d %s", code, b)
	}
	got := ids(t, rc.waitRequests(t, 5))
	if !slices.Equal(got, []uint64{1, 2, 2, 3, 4}) {
		t.Fatalf("ids %v", got)
	}
}

// TestReplay moves the cursor back (and refuses one beyond the log).
func TestReplay(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	e.st.Append(t, storetest.Face("c", 1, "a"), storetest.Face("c", 2, "b"), storetest.Face("c", 3, "c"))
	rc.waitRequests(t, 3)
	code, b := e.call("POST", "/webhooks/"+v.ID+"/replay", `{"after": 1}`)
	if code != 200 || !strings.Contains(string(b), `"cursor":1`) {
		t.Fatalf("replay: %d %s", code, b)
	}
	got := ids(t, rc.waitRequests(t, 5))
	if !slices.Equal(got, []uint64{1, 2, 3, 2, 3}) {
		t.Fatalf("ids %v", got)
	}
	code, b = e.call("POST", "/webhooks/"+v.ID+"/replay", `{"after": 4}`)
	if code != 422 || !strings.Contains(string(b), "less_than_equal") {
		t.Fatalf("replay beyond the log: %d %s", code, b)
	}
	code, _ = e.call("POST", "/webhooks/wh_00000000000000ff/replay", `{"after": 1}`)
	if code != 404 {
		t.Fatalf("replay of a missing webhook: %d", code)
	}
}

// TestRotateSecret: the new secret signs the next deliveries and is shown
// once; the old one no longer verifies.
func TestRotateSecret(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	code, b := e.call("POST", "/webhooks/"+v.ID+"/rotate-secret", "")
	var r view
	if code != 200 || json.Unmarshal(b, &r) != nil || !strings.HasPrefix(r.Secret, "whsec_") || r.Secret == v.Secret {
		t.Fatalf("rotate: %d %s", code, b)
	}
	e.st.Append(t, storetest.Face("c", 1, "a"))
	got := rc.waitRequests(t, 1)
	if err := verifySpec(r.Secret, got[0].hdr, got[0].body, time.Now()); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if verifySpec(v.Secret, got[0].hdr, got[0].body, time.Now()) == nil {
		t.Fatal("old secret still verifies")
	}
	if g := e.get(v.ID); g.Secret != "" {
		t.Fatal("GET shows the secret")
	}
}

// TestDelete: a deleted webhook stops, even mid-retry, and is gone after
// a restart.
func TestDelete(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	rc.setRespond(func(int, http.ResponseWriter, *http.Request) int { return 500 })
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	e.st.Append(t, storetest.Face("c", 1, "a"))
	rc.waitRequests(t, 2)
	if code, b := e.call("DELETE", "/webhooks/"+v.ID, ""); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := e.call("GET", "/webhooks/"+v.ID, ""); code != 404 {
		t.Fatalf("GET after delete: %d", code)
	}
	if code, _ := e.call("DELETE", "/webhooks/"+v.ID, ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	e.restart()
	if code, b := e.call("GET", "/webhooks", ""); code != 200 || string(b) != "[]" {
		t.Fatalf("after restart: %d %s", code, b)
	}
}

// TestRestartWhileDownLosesNothing: events appended while the receiver
// is down, across a restart of the server, all arrive, in order and
// exactly once (nothing was acknowledged before the restart, and the
// cursor of what was is persisted at shutdown).
func TestRestartWhileDownLosesNothing(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	for i := range 50 {
		e.st.Append(t, storetest.Face("c", int64(i+1), "up"))
	}
	rc.waitRequests(t, 50)
	waitFor(t, "cursor 50", func() bool { return e.get(v.ID).Cursor == 50 })

	rc.setRespond(func(int, http.ResponseWriter, *http.Request) int { return 503 })
	for i := range 150 {
		e.st.Append(t, storetest.Face("c", int64(100+i), "down"))
	}
	e.restart()
	for i := range 50 {
		e.st.Append(t, storetest.Face("c", int64(300+i), "after restart"))
	}
	e.restart()
	if g := e.get(v.ID); g.Cursor != 50 || g.Lag != 200 {
		t.Fatalf("after restarts: %+v", g)
	}
	rc.mu.Lock()
	down := len(rc.got)
	rc.got = rc.got[:0]
	rc.respond = nil
	rc.mu.Unlock()
	if down < 1 {
		t.Fatal("the receiver was never tried while down")
	}
	got := ids(t, rc.waitRequests(t, 200))
	// Attempts that were in flight when the receiver came back may have
	// been answered 503 and retried: drop consecutive duplicates.
	got = slices.Compact(got)
	if !slices.Equal(got, seq(51, 250)) {
		t.Fatalf("after the receiver came back: %v", got)
	}
}

// TestRetentionSkips: when retention deletes events a webhook has not
// reached, it skips to the oldest retained one and counts the gap; the
// deleted events are never sent.
func TestRetentionSkips(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t)
	var down atomic.Bool
	down.Store(true)
	rc.setRespond(func(int, http.ResponseWriter, *http.Request) int {
		if down.Load() {
			return 503
		}
		return 200
	})
	v := e.create(`{"url":"` + rc.srv.URL + `"}`)
	for i := range 10 {
		e.st.Append(t, storetest.Face("c", int64(1000+i), "old"))
	}
	rc.waitRequests(t, 1)
	if _, err := e.st.View.Cleanup(context.Background(), 5000); err != nil {
		t.Fatal(err)
	}
	e.st.Append(t, storetest.Face("c", 10_000, "new"), storetest.Face("c", 10_001, "new"))
	rc.mu.Lock()
	rc.got = rc.got[:0]
	rc.mu.Unlock()
	down.Store(false)
	waitFor(t, "cursor 12", func() bool { return e.get(v.ID).Cursor == 12 })
	got := slices.Compact(ids(t, rc.requests()))
	// An attempt of event 1 in flight when the receiver came back may
	// have got there; no other old event may.
	got = slices.DeleteFunc(got, func(id uint64) bool { return id == 1 })
	if !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("delivered %v", got)
	}
	if g := e.get(v.ID); g.Skipped != 10 {
		t.Fatalf("skipped %d, want 10", g.Skipped)
	}
}

// TestSlowReceiverIsolated: a receiver that never answers holds only its
// own webhook back: another webhook's deliveries and ingest go on.
func TestSlowReceiverIsolated(t *testing.T) {
	e := newEnv(t, func(o *webhook.Options) { o.Timeout = time.Minute; o.MaxConcurrency = 4 })
	slow, fast := newReceiver(t), newReceiver(t)
	block := make(chan struct{})
	defer close(block)
	slow.setRespond(func(_ int, _ http.ResponseWriter, r *http.Request) int {
		select {
		case <-block:
		case <-r.Context().Done():
		}
		return 200
	})
	e.create(`{"url":"` + slow.srv.URL + `"}`)
	e.create(`{"url":"` + slow.srv.URL + `/2"}`)
	e.create(`{"url":"` + fast.srv.URL + `"}`)
	for i := range 300 {
		e.st.Append(t, storetest.Face("c", int64(i+1), "x"))
	}
	if got := ids(t, fast.waitRequests(t, 300)); !slices.Equal(got, seq(1, 300)) {
		t.Fatalf("fast receiver got %v", got)
	}
	if n := len(slow.requests()); n != 2 {
		t.Fatalf("slow receiver got %d requests, want 1 per webhook", n)
	}
}

// TestSSRF: destinations refused at creation, and at connect time when
// the DNS answer changed since.
func TestSSRF(t *testing.T) {
	e := newEnv(t, func(o *webhook.Options) { o.AllowLoopback = false })
	rc := newReceiver(t)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/",
		"http://[::ffff:169.254.169.254]/",
		"http://[fe80::1%25eth0]/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://0.0.0.0:" + port + "/",
		"http://224.0.0.1/",
		"http://127.0.0.1:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://localhost:" + port + "/",
		"http://LOCALHOST.:" + port + "/",
		"file:///etc/passwd",
		"ftp://example.com/",
		"gopher://example.com/",
		"http://user:pass@example.com/",
		"/relative",
		"http://",
	} {
		code, b := e.call("POST", "/webhooks", `{"url":`+strconv.Quote(u)+`}`)
		if code != 422 || !strings.Contains(string(b), `"loc":["body","url"]`) {
			t.Errorf("%s: %d %s", u, code, b)
		}
	}
	// Private LAN addresses are allowed (not dialled here: no delivery
	// is pending until an event is appended).
	for _, u := range []string{"http://192.168.1.20:8080/hook", "https://10.0.0.5/", "http://172.16.0.1/"} {
		v := e.create(`{"url":"` + u + `"}`)
		e.call("DELETE", "/webhooks/"+v.ID, "")
	}
	if code, b := e.call("GET", "/webhooks", ""); string(b) != "[]" {
		t.Fatalf("refused webhooks were stored: %d %s", code, b)
	}
}

// TestSSRFConnectTime: a name that resolved to a public address when the
// webhook was created but resolves to loopback when dialled is refused by
// the dialer; the receiver never sees a request.
func TestSSRFConnectTime(t *testing.T) {
	e := newEnv(t, func(o *webhook.Options) {
		o.AllowLoopback = false
		webhook.SetLookup(o, func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
		})
	})
	rc := newReceiver(t)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	// "localhost" itself is refused by name; a name under a domain the
	// system resolver maps to loopback stands for a rebinding answer.
	host := loopbackName(t)
	v := e.create(`{"url":"http://` + host + `:` + port + `/hook"}`)
	e.st.Append(t, storetest.Face("c", 1, "a"))
	waitFor(t, "a refused attempt", func() bool {
		return testutil.ToFloat64(e.m.DeliveriesCounter(v.ID, "refused")) >= 2
	})
	g := e.get(v.ID)
	if g.LastError == nil || !strings.Contains(*g.LastError, "loopback") || g.Cursor != 0 {
		t.Fatalf("after refusal: %+v", g)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}

// TestAddressPolicy is the policy's table.
func TestAddressPolicy(t *testing.T) {
	for _, c := range []struct {
		addr              string
		refused, loopback bool
	}{
		{"169.254.169.254", true, false},
		{"169.254.1.1", true, false},
		{"fe80::1", true, false},
		{"fd00:ec2::254", true, false},
		{"100.100.100.200", true, false},
		{"64:ff9b::a9fe:a9fe", true, false}, // NAT64 of 169.254.169.254
		{"::169.254.169.254", true, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"::", true, false},
		{"255.255.255.255", true, false},
		{"239.1.2.3", true, false},
		{"ff02::1", true, false},
		{"127.0.0.1", true, true},
		{"127.8.9.10", true, true},
		{"::1", true, true},
		{"::ffff:127.0.0.1", true, true},
		{"10.1.2.3", false, false},
		{"192.168.0.10", false, false},
		{"172.31.255.1", false, false},
		{"fd12:3456::1", false, false},
		{"100.64.0.1", false, false},
		{"8.8.8.8", false, false},
		{"2001:4860:4860::8888", false, false},
	} {
		a := netip.MustParseAddr(c.addr)
		err := webhook.CheckAddr(false, a)
		if (err != nil) != c.refused {
			t.Errorf("%s: refused=%v, want %v (%v)", c.addr, err != nil, c.refused, err)
		}
		err = webhook.CheckAddr(true, a)
		if want := c.refused && !c.loopback; (err != nil) != want {
			t.Errorf("%s with loopback allowed: refused=%v, want %v", c.addr, err != nil, want)
		}
	}
}
