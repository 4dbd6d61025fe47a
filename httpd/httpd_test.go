package httpd_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/httpd/apidocs"
	"github.com/securevision/events/httpd/ui"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/testbin"
	"github.com/securevision/events/internal/vocab"
)

type env struct {
	srv   *httptest.Server
	store *storetest.Store
	api   *httpd.Server
}

func newEnv(t *testing.T, mod func(*httpd.Options)) *env {
	t.Helper()
	st := storetest.Open(t, storetest.Options{})
	opts := httpd.Options{
		Log: st.Log, View: st.View, Ingest: st.Ingest,
		WSEnabled: true, RetentionDays: 30,
		Gatherer: st.Reg, Registerer: st.Reg,
	}
	if mod != nil {
		mod(&opts)
	}
	api, err := httpd.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: st, api: api}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (e *env) do(t testing.TB, method, path string, body string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

type event struct {
	ID        uint64         `json:"id"`
	Type      string         `json:"type"`
	TsMs      int64          `json:"ts_ms"`
	Source    string         `json:"frame_source_id"`
	CreatedAt string         `json:"created_at"`
	Payload   map[string]any `json:"payload"`
}

// faceJSON is a face_match item of a POST /ingest body:
// {"type":"face_match","ts_ms":ts,"frame_source_id":src,"payload":{"person_name":name,"similarity":0.92,"bbox":[100,150,250,300],"embedding_distance":0.35}}
func faceJSON(src string, ts int64, name string) string {
	d := 0.35
	return string(ingestbody.Append(nil, &ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: src,
		Face: &ingest.Face{PersonName: name, Similarity: 0.92, BBox: ingest.BBox{100, 150, 250, 300}, EmbeddingDistance: &d}}))
}

// plateJSON is a plate_read item of a POST /ingest body:
// {"type":"plate_read","ts_ms":ts,"frame_source_id":src,"payload":{"plate_text":text,"confidence":0.88,"region":"US-CA","list_match":"whitelist"}}
func plateJSON(src string, ts int64, text string) string {
	return string(ingestbody.Append(nil, &ingest.Event{Type: vocab.PlateRead, TsMs: ts, Source: src,
		Plate: &ingest.Plate{PlateText: text, Confidence: 0.88, Region: "US-CA", ListMatch: vocab.Whitelist, ListMatchSet: true}}))
}

func TestSeedShapes(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(t, "GET", "/", "")
	if r.code != 200 || string(r.body) != `{"service":"SecureVision Events API","version":"0.1.0","ws_enabled":true,"auth_enabled":false}` {
		t.Fatalf("root: %d %s", r.code, r.body)
	}
	now := time.Now().UnixMilli()
	r = e.do(t, "POST", "/ingest", "["+faceJSON("camera_front_door", now-5000, "John Doe")+","+plateJSON("camera_driveway", now, "ABC1234")+"]")
	if r.code != 200 || string(r.body) != `{"count":2,"first_id":1,"last_id":2}` {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	// curl http://localhost:8000/events?limit=50
	r = e.do(t, "GET", "/events?limit=50", "")
	var evs []event
	r.json(t, &evs)
	if len(evs) != 2 || evs[0].ID != 2 || evs[1].ID != 1 {
		t.Fatalf("events: %s", r.body)
	}
	f := evs[1]
	if f.Type != "face_match" || f.Source != "camera_front_door" || f.TsMs != now-5000 || f.Payload["person_name"] != "John Doe" ||
		f.Payload["similarity"] != 0.92 || fmt.Sprint(f.Payload["bbox"]) != "[100 150 250 300]" || f.Payload["embedding_distance"] != 0.35 {
		t.Fatalf("face event: %+v", f)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", f.CreatedAt); err != nil {
		t.Fatalf("created_at %q: %v", f.CreatedAt, err)
	}
	// The field order is the original service's.
	if !bytes.HasPrefix(r.body, []byte(`[{"id":2,"type":"plate_read","ts_ms":`)) {
		t.Fatalf("field order: %s", r.body)
	}
	// type=face_match&limit=100; since; type+since+limit
	for q, want := range map[string][]uint64{
		"type=face_match&limit=100":                                {1},
		fmt.Sprintf("since=%d", now-5000):                          {2},
		fmt.Sprintf("type=plate_read&since=%d&limit=20", now-6000): {2},
		fmt.Sprintf("since=%d", now):                               nil,
	} {
		var got []event
		e.do(t, "GET", "/events?"+q, "").json(t, &got)
		if len(got) != len(want) || len(want) > 0 && got[0].ID != want[0] {
			t.Errorf("%s: %+v", q, got)
		}
	}
	// /faces/1, /plates/2, wrong types and missing ids.
	for path, want := range map[string]string{
		"/faces/1": "200", "/plates/2": "200", "/events/1": "200",
		"/faces/2":  `404 {"detail":"Face match event not found"}`,
		"/plates/1": `404 {"detail":"Plate read event not found"}`,
		"/events/9": `404 {"detail":"Event not found"}`,
		"/faces/0":  `404 {"detail":"Face match event not found"}`,
	} {
		r := e.do(t, "GET", path, "")
		got := fmt.Sprint(r.code)
		if r.code != 200 {
			got += " " + string(r.body)
		}
		if got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	r = e.do(t, "GET", "/plates/2", "")
	var p event
	r.json(t, &p)
	if p.Payload["plate_text"] != "ABC1234" || p.Payload["list_match"] != "whitelist" || p.Payload["region"] != "US-CA" {
		t.Fatalf("plate: %s", r.body)
	}
	// health
	var h struct {
		OK           bool                                         `json:"ok"`
		Timestamp    int64                                        `json:"timestamp"`
		Service      string                                       `json:"service"`
		Version      string                                       `json:"version"`
		WSClients    int                                          `json:"ws_clients"`
		RecentEvents struct{ Total, FaceMatches, PlateReads int } `json:"recent_events"`
		EventRate    struct {
			EPS    float64 `json:"events_per_second"`
			Sample float64 `json:"sample_duration_seconds"`
		} `json:"event_rate"`
	}
	r = e.do(t, "GET", "/health", "")
	r.json(t, &h)
	if r.code != 200 || !h.OK || h.Service != "SecureVision Events API" || h.EventRate.Sample != 300 || h.Timestamp == 0 {
		t.Fatalf("health: %s", r.body)
	}
	var raw map[string]map[string]any
	json.Unmarshal(r.body, &raw)
	if raw["recent_events"]["total"] != 2.0 || raw["recent_events"]["face_matches"] != 1.0 || raw["recent_events"]["plate_reads"] != 1.0 {
		t.Fatalf("health recent: %s", r.body)
	}
	if !bytes.Contains(r.body, []byte(`"sample_duration_seconds":300.0`)) {
		t.Fatalf("sample_duration_seconds is not the seed's float: %s", r.body)
	}
	// cleanup
	r = e.do(t, "POST", "/cleanup", "")
	if r.code != 200 || string(r.body) != `{"deleted":0,"retention_days":30}` {
		t.Fatalf("cleanup: %d %s", r.code, r.body)
	}
	// FastAPI's 404 and 405.
	if r := e.do(t, "GET", "/nope", ""); r.code != 404 || string(r.body) != `{"detail":"Not Found"}` {
		t.Fatalf("404: %d %s", r.code, r.body)
	}
	if r := e.do(t, "DELETE", "/events", ""); r.code != 405 || string(r.body) != `{"detail":"Method Not Allowed"}` {
		t.Fatalf("405: %d %s", r.code, r.body)
	}
}

func TestIngestFormsAndErrors(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now().UnixMilli()
	nd := faceJSON("a", now, "x") + "\n\n" + plateJSON("b", now, "P1") + "\n"
	if r := e.do(t, "POST", "/ingest", nd, "Content-Type", "application/x-ndjson"); r.code != 200 || string(r.body) != `{"count":2,"first_id":1,"last_id":2}` {
		t.Fatalf("ndjson: %d %s", r.code, r.body)
	}
	if r := e.do(t, "POST", "/ingest", faceJSON("a", now, "single")); r.code != 200 || string(r.body) != `{"count":1,"first_id":3,"last_id":3}` {
		t.Fatalf("single: %d %s", r.code, r.body)
	}
	// Missing ts_ms gets server time; missing list_match is null.
	if r := e.do(t, "POST", "/ingest", `{"type":"plate_read","frame_source_id":"c","payload":{"plate_text":"X1","confidence":0.5,"region":"EU-DE"}}`); r.code != 200 {
		t.Fatalf("no ts: %d %s", r.code, r.body)
	}
	var got event
	e.do(t, "GET", "/events/4", "").json(t, &got)
	if got.TsMs < now || got.Payload["list_match"] != nil {
		t.Fatalf("defaults: %+v", got)
	}
	cases := []struct {
		name, body, ct string
		code           int
		locs           []string
	}{
		{"bad items named by index and field", "[" + faceJSON("a", now, "ok") + `,{"type":"face_matc","frame_source_id":"a","payload":{}},` +
			`{"type":"face_match","ts_ms":0,"frame_source_id":"","payload":{"person_name":"","similarity":1.5,"bbox":[3,1,2,4],"embedding_distance":-1},"extra":1},` +
			`{"type":"plate_read","frame_source_id":"x","payload":{"plate_text":"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789","confidence":"high","list_match":"greylist","bbox":[1,2]}}]`, "", 422,
			[]string{"body.1.type", "body.2.extra", "body.2.ts_ms", "body.2.frame_source_id", "body.2.payload.person_name", "body.2.payload.similarity",
				"body.2.payload.bbox", "body.2.payload.embedding_distance", "body.3.payload.plate_text", "body.3.payload.confidence", "body.3.payload.list_match", "body.3.payload.bbox"}},
		{"missing fields", `{"payload":{"person_name":"x"}}`, "", 422, []string{"body.type", "body.frame_source_id"}},
		{"payload missing face fields", `{"type":"face_match","frame_source_id":"a","payload":{"person_name":"x"}}`, "", 422,
			[]string{"body.payload.similarity", "body.payload.bbox"}},
		{"not JSON", `{"type":`, "", 422, []string{"body"}},
		{"empty array", `[]`, "", 422, []string{"body"}},
		{"empty body", ``, "", 422, []string{"body"}},
		{"array of non-objects", `[1,"x",null]`, "", 422, []string{"body.0", "body.1", "body.2"}},
		{"bad ndjson line", faceJSON("a", now, "x") + "\n{oops}\n", "application/x-ndjson", 422, []string{"body.1"}},
		{"non-JPEG snapshot", strings.Replace(faceJSON("a", now, "x"), `"payload"`, `"snapshot_jpeg":"aGVsbG8=","payload"`, 1), "", 422, []string{"body.snapshot_jpeg"}},
		{"bad base64 snapshot", strings.Replace(faceJSON("a", now, "x"), `"payload"`, `"snapshot_jpeg":"!!","payload"`, 1), "", 422, []string{"body.snapshot_jpeg"}},
		{"NaN-ish similarity", strings.Replace(faceJSON("a", now, "x"), `0.92`, `1e999`, 1), "", 422, []string{"body.payload.similarity"}},
		{"non-integer ts_ms", strings.Replace(faceJSON("a", now, "x"), fmt.Sprint(now), "1.5", 1), "", 422, []string{"body.ts_ms"}},
		{"payload not an object", `{"type":"face_match","frame_source_id":"a","payload":5}`, "", 422, []string{"body.payload"}},
		{"NaN in an extra field", strings.Replace(faceJSON("a", now, "x"), `"similarity"`, `"x":NaN,"similarity"`, 1), "", 422, []string{"body.payload.x"}},
		{"Infinity as similarity", strings.Replace(faceJSON("a", now, "x"), `0.92`, `Infinity`, 1), "", 422, []string{"body"}},
		{"control char in source", strings.Replace(faceJSON("a", now, "x"), `"a"`, `"a\u0007"`, 1), "", 422, []string{"body.frame_source_id"}},
	}
	before := e.store.Log.LastID()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{}
			if tc.ct != "" {
				hdr = []string{"Content-Type", tc.ct}
			}
			r := e.do(t, "POST", "/ingest", tc.body, hdr...)
			if r.code != tc.code {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			var body struct {
				Detail []vocab.FieldError `json:"detail"`
			}
			r.json(t, &body)
			var locs []string
			for _, d := range body.Detail {
				parts := make([]string, len(d.Loc))
				for i, l := range d.Loc {
					parts[i] = fmt.Sprint(l)
				}
				locs = append(locs, strings.Join(parts, "."))
				if d.Msg == "" || d.Type == "" {
					t.Errorf("error without msg/type: %+v", d)
				}
			}
			for _, want := range tc.locs {
				if !slices.Contains(locs, want) {
					t.Errorf("no error at %s; got %v", want, locs)
				}
			}
		})
	}
	if after := e.store.Log.LastID(); after != before {
		t.Fatalf("invalid batches appended: last id %d -> %d", before, after)
	}
}

func TestIngestLimits(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now().UnixMilli()
	one := faceJSON("a", now, "x")
	items := make([]string, vocab.MaxItems+1)
	for i := range items {
		items[i] = one
	}
	r := e.do(t, "POST", "/ingest", "["+strings.Join(items, ",")+"]")
	if r.code != 413 || !bytes.Contains(r.body, []byte(`"detail"`)) {
		t.Fatalf("10001 items: %d %s", r.code, r.body)
	}
	r = e.do(t, "POST", "/ingest", strings.Join(items, "\n"), "Content-Type", "application/x-ndjson")
	if r.code != 413 {
		t.Fatalf("10001 ndjson lines: %d %s", r.code, r.body)
	}
	// Exactly the limit is fine.
	r = e.do(t, "POST", "/ingest", "["+strings.Join(items[:vocab.MaxItems], ",")+"]")
	if r.code != 200 || !bytes.Contains(r.body, []byte(`"count":10000`)) {
		t.Fatalf("10000 items: %d %s", r.code, r.body)
	}
	big := `{"type":"face_match","frame_source_id":"a","payload":{"person_name":"x","similarity":0.5,"bbox":[1,2,3,4],"pad":"` + strings.Repeat("x", vocab.MaxBodyBytes) + `"}}`
	if r := e.do(t, "POST", "/ingest", big); r.code != 413 {
		t.Fatalf("9 MiB body: %d %s", r.code, r.body[:min(len(r.body), 200)])
	}
	// Chunked (no Content-Length) bodies are capped while read.
	req, _ := http.NewRequest("POST", e.srv.URL+"/ingest", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked 9 MiB: %d", res.StatusCode)
	}
	if e.store.Log.LastID() != vocab.MaxItems {
		t.Fatalf("last id %d", e.store.Log.LastID())
	}
}

func TestSnapshots(t *testing.T) {
	e := newEnv(t, nil)
	var buf bytes.Buffer
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	b64 := base64.StdEncoding.EncodeToString(buf.Bytes())
	now := time.Now().UnixMilli()
	body := strings.Replace(faceJSON("a", now, "x"), `"payload"`, `"snapshot_jpeg":"`+b64+`","payload"`, 1)
	if r := e.do(t, "POST", "/ingest", "["+body+","+faceJSON("a", now, "none")+"]"); r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	r := e.do(t, "GET", "/events/1/snapshot.jpg", "")
	if r.code != 200 || r.hdr.Get("Content-Type") != "image/jpeg" || !bytes.Equal(r.body, buf.Bytes()) {
		t.Fatalf("snapshot: %d %s", r.code, r.hdr)
	}
	if r := e.do(t, "GET", "/events/1", ""); bytes.Contains(r.body, []byte("snapshot")) {
		t.Fatalf("snapshot echoed in the event: %s", r.body)
	}
	if r := e.do(t, "GET", "/events/2/snapshot.jpg", ""); r.code != 404 || string(r.body) != `{"detail":"Snapshot not found"}` {
		t.Fatalf("no snapshot: %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", "/events/x/snapshot.jpg", ""); r.code != 422 {
		t.Fatalf("bad id: %d", r.code)
	}
}

func TestEventsParameterErrors(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		q, loc, typ string
	}{
		{"limit=0", "limit", "greater_than_equal"},
		{"limit=" + strconv.Itoa(vocab.MaxQueryLimit+1), "limit", "less_than_equal"},
		{"limit=abc", "limit", "int_parsing"},
		{"limit=1.5", "limit", "int_parsing"},
		{"since=yesterday", "since", "int_parsing"},
		{"until=1e3", "until", "int_parsing"},
		{"type=person", "type", "enum"},
		{"before=1&after=2", "before", "value_error"},
		{"before=0", "before", "greater_than_equal"},
		{"after=-1", "after", "greater_than_equal"},
		{"after=x", "after", "int_parsing"},
		{"order=up", "order", "enum"},
		{"source=" + strings.Repeat("s", vocab.MaxSourceLen+1), "source", "string_too_long"},
	}
	for _, tc := range cases {
		r := e.do(t, "GET", "/events?"+tc.q, "")
		var body struct {
			Detail []vocab.FieldError `json:"detail"`
		}
		r.json(t, &body)
		if r.code != 422 || len(body.Detail) == 0 || fmt.Sprint(body.Detail[0].Loc) != "[query "+tc.loc+"]" || body.Detail[0].Type != tc.typ {
			t.Errorf("%s: %d %s", tc.q, r.code, r.body)
		}
	}
	for _, q := range []string{"limit=1", "limit=" + strconv.Itoa(vocab.MaxQueryLimit), "type=face_match", "order=asc", "after=0", "before=5", "since=-5", "until=5&since=1", "source=cam"} {
		if r := e.do(t, "GET", "/events?"+q, ""); r.code != 200 || string(r.body) != "[]" {
			t.Errorf("%s: %d %s", q, r.code, r.body)
		}
	}
	for _, p := range []string{"/events/abc", "/faces/1.5", "/plates/-1"} {
		if r := e.do(t, "GET", p, ""); r.code != 422 || !bytes.Contains(r.body, []byte(`["path","event_id"]`)) {
			t.Errorf("%s: %d %s", p, r.code, r.body)
		}
	}
}

// TestPaginationWalkUnderAppendsAndRetention follows next links in both
// directions while appends and retention run: no duplicate, no miss.
func TestPaginationWalkUnderAppendsAndRetention(t *testing.T) {
	e := newEnv(t, func(o *httpd.Options) { o.RetentionDays = 1 })
	now := time.Now()
	old := now.Add(-48 * time.Hour).UnixMilli()
	// 1000 expired then 2000 fresh events, 3 sources.
	var batch []string
	for i := 0; i < 3000; i++ {
		ts := now.UnixMilli() - int64(3000-i)
		if i < 1000 {
			ts = old + int64(i)
		}
		batch = append(batch, faceJSON(fmt.Sprintf("cam-%d", i%3), ts, fmt.Sprint(i)))
		if len(batch) == 500 {
			if r := e.do(t, "POST", "/ingest", "["+strings.Join(batch, ",")+"]"); r.code != 200 {
				t.Fatal(r.code)
			}
			batch = nil
		}
	}
	walk := func(first string) []uint64 {
		var got []uint64
		next := e.srv.URL + first
		for next != "" {
			res, err := http.Get(next)
			if err != nil {
				t.Error(err)
				return nil
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var evs []event
			if err := json.Unmarshal(b, &evs); err != nil || res.StatusCode != 200 {
				t.Errorf("%s: %d %s", next, res.StatusCode, b)
				return nil
			}
			for _, ev := range evs {
				if ev.Source != "cam-1" {
					t.Errorf("filter lost: %+v", ev)
				}
				got = append(got, ev.ID)
			}
			if len(evs) > 0 && res.Header.Get("X-Next-Cursor") != fmt.Sprint(evs[len(evs)-1].ID) {
				t.Errorf("X-Next-Cursor %q, last id %d", res.Header.Get("X-Next-Cursor"), evs[len(evs)-1].ID)
			}
			next = ""
			if l := res.Header.Get("Link"); l != "" {
				target, _, _ := strings.Cut(l, ";")
				ref, err := url.Parse(strings.Trim(target, "<> "))
				if err != nil || ref.IsAbs() || ref.Host != "" {
					t.Errorf("link target %q: not a relative reference (%v)", target, err)
					return nil
				}
				u := res.Request.URL.ResolveReference(ref)
				if u.Query().Get("source") != "cam-1" || u.Query().Get("limit") != "37" {
					t.Errorf("link lost filters: %s", u)
				}
				next = u.String()
			}
		}
		return got
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	var appended []uint64
	go func() { // appender
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			r := e.do(t, "POST", "/ingest", faceJSON("cam-1", time.Now().UnixMilli(), "live"))
			var res ingest.Result
			r.json(t, &res)
			appended = append(appended, res.FirstID)
		}
	}()
	go func() { // retention
		defer wg.Done()
		for !stop.Load() {
			e.do(t, "POST", "/cleanup", "")
		}
	}()
	desc := walk("/events?source=cam-1&limit=37")
	asc := walk("/events?source=cam-1&limit=37&after=0")
	stop.Store(true)
	wg.Wait()
	check := func(name string, got []uint64, ascending bool) {
		seen := map[uint64]bool{}
		for i, id := range got {
			if seen[id] {
				t.Fatalf("%s: duplicate %d", name, id)
			}
			seen[id] = true
			if i > 0 && (got[i-1] < id) != ascending {
				t.Fatalf("%s: order broken at %d", name, id)
			}
		}
		// Every fresh pre-existing cam-1 event (ids 1001..3000 with
		// (id-1)%3==1) must be there; expired ones may or may not be,
		// depending on when retention ran, but none after it ran.
		for id := uint64(1001); id <= 3000; id++ {
			if (id-1)%3 == 1 && !seen[id] {
				t.Fatalf("%s: missed event %d", name, id)
			}
		}
	}
	check("desc", desc, false)
	check("asc", asc, true)
	// The ascending walk ends at the newest: it saw live appends made
	// before it finished.
	if len(appended) == 0 {
		t.Fatal("no concurrent appends happened")
	}
	// Retention ran: nothing expired is served now.
	var evs []event
	e.do(t, "GET", fmt.Sprintf("/events?until=%d&limit=1000", old+10_000), "").json(t, &evs)
	if len(evs) != 0 {
		t.Fatalf("expired events served after cleanup: %d", len(evs))
	}
}

func TestCursorDirections(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now().UnixMilli()
	var items []string
	for i := 0; i < 10; i++ {
		items = append(items, faceJSON("a", now, fmt.Sprint(i)))
	}
	e.do(t, "POST", "/ingest", "["+strings.Join(items, ",")+"]")
	cases := map[string]string{
		"limit=3":                    "[10 9 8] before=8",
		"limit=3&order=asc":          "[1 2 3] after=3",
		"limit=3&after=4":            "[5 6 7] after=7",
		"limit=3&after=4&order=desc": "[7 6 5] after=7",
		"limit=3&before=5":           "[4 3 2] before=2",
		"limit=3&before=5&order=asc": "[2 3 4] before=2",
		"limit=3&after=8":            "[9 10] ",
		"limit=3&before=2":           "[1] ",
	}
	for q, want := range cases {
		r := e.do(t, "GET", "/events?"+q, "")
		var evs []event
		r.json(t, &evs)
		var got []uint64
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		next := ""
		if l := r.hdr.Get("Link"); l != "" {
			u, _ := url.Parse(strings.Trim(strings.Split(l, ";")[0], "<>"))
			if v := u.Query().Get("after"); v != "" {
				next = "after=" + v
			} else {
				next = "before=" + u.Query().Get("before")
			}
		}
		if s := fmt.Sprintf("%v %s", got, next); s != want {
			t.Errorf("%s: %s, want %s", q, s, want)
		}
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	var logBuf testbin.LockedBuffer
	e := newEnv(t, func(o *httpd.Options) {
		o.AuthToken = token
		o.Stream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
		o.Backup = func(context.Context) (any, error) { return map[string]string{"path": "x"}, nil }
		o.Logger = newDebugLogger(&logBuf)
	})
	protected := map[string]string{
		"GET /events": "", "GET /events/1": "", "GET /faces/1": "", "GET /plates/1": "",
		"GET /events/1/snapshot.jpg": "", "POST /ingest": faceJSON("a", 1, "x"), "POST /cleanup": "",
		"GET /stream": "", "POST /backup": "",
	}
	for route, body := range protected {
		method, path, _ := strings.Cut(route, " ")
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Basic " + token}, {"Authorization", "Bearer"}} {
			r := e.do(t, method, path, body, hdr...)
			if r.code != 401 || string(r.body) != `{"detail":"Authentication required"}` || r.hdr.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s with %v: %d %s %v", route, hdr, r.code, r.body, r.hdr)
			}
		}
		r := e.do(t, method, path, body, "Authorization", "Bearer "+token)
		if r.code == 401 {
			t.Errorf("%s with the token: 401", route)
		}
	}
	// ?token= only on /stream.
	if r := e.do(t, "GET", "/stream?token="+token, ""); r.code != 299 {
		t.Errorf("stream with ?token=: %d", r.code)
	}
	if r := e.do(t, "GET", "/events?token="+token, ""); r.code != 401 {
		t.Errorf("events with ?token=: %d", r.code)
	}
	for _, p := range []string{"/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json"} {
		if r := e.do(t, "GET", p, ""); r.code != 200 {
			t.Errorf("public %s: %d", p, r.code)
		}
	}
	var root map[string]any
	e.do(t, "GET", "/", "").json(t, &root)
	if root["auth_enabled"] != true {
		t.Errorf("root: %v", root)
	}
	if strings.Contains(logBuf.String(), token) {
		t.Fatalf("token in logs:\n%s", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "token=REDACTED") {
		t.Fatalf("access log did not record the redacted stream query:\n%s", logBuf.String())
	}
}

func TestRateLimitAndCORS(t *testing.T) {
	e := newEnv(t, func(o *httpd.Options) {
		o.RateLimitPerMinute = 5
		o.CORSOrigins = []string{"https://dash.example"}
	})
	codes := []int{}
	var last resp
	for i := 0; i < 7; i++ {
		last = e.do(t, "GET", "/events", "")
		codes = append(codes, last.code)
	}
	if fmt.Sprint(codes) != "[200 200 200 200 200 429 429]" {
		t.Fatalf("codes %v", codes)
	}
	if last.hdr.Get("Retry-After") == "" || !bytes.Contains(last.body, []byte(`"detail"`)) {
		t.Fatalf("429: %v %s", last.hdr, last.body)
	}
	// /health stays available to monitors under the REST limit.
	if r := e.do(t, "GET", "/health", ""); r.code != 200 {
		t.Fatalf("health limited: %d", r.code)
	}
	// Another client IP is served normally (X-Forwarded-For is not trusted,
	// so use the limiter through a second listener address).
	r := e.do(t, "OPTIONS", "/events", "", "Origin", "https://dash.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if r.hdr.Get("Access-Control-Allow-Origin") != "https://dash.example" || !strings.Contains(strings.ToLower(r.hdr.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight: %d %v", r.code, r.hdr)
	}
	r = e.do(t, "GET", "/health", "", "Origin", "https://evil.example")
	if r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", r.hdr)
	}
	r = e.do(t, "GET", "/health", "", "Origin", "https://dash.example")
	if r.hdr.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Fatalf("allowed origin refused: %v", r.hdr)
	}
}

// TestOpenAPIMatchesRoutes: every registered route is documented and
// every documented operation is served, so the two cannot drift.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, func(o *httpd.Options) {
		o.Stream = http.NotFoundHandler()
		o.Backup = func(context.Context) (any, error) { return nil, nil }
		// The feature routes the server's wiring adds (never called here).
		o.Routes = append(featureRoutes(t), httpd.Route{Method: http.MethodGet, Path: ui.StatsPath, Handler: ui.HourlyHandler(nil)})
		o.Eraser, o.Scrubber = o.View.(httpd.Eraser), o.Log.(httpd.Scrubber)
	})
	docs := map[string]bool{}
	for _, r := range apidocs.Routes() {
		docs[r.Method+" "+r.Path] = true
	}
	served := map[string]bool{}
	for _, r := range e.api.Routes() {
		served[r] = true
	}
	documented := map[string]bool{}
	for _, op := range apidocs.Operations() {
		k := op.Method + " " + op.Path
		documented[k] = true
		if !served[k] {
			t.Errorf("documented but not served: %s", k)
		}
	}
	for r := range served {
		if !documented[r] && !docs[r] {
			t.Errorf("served but not documented: %s", r)
		}
	}
}

func TestMetricsLabelRoutePatterns(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, "GET", "/faces/12345", "")
	e.do(t, "GET", "/faces/777", "")
	r := e.do(t, "GET", "/metrics", "")
	if !bytes.Contains(r.body, []byte(`securevision_httpd_requests_total{code="404",method="GET",route="/faces/:event_id"} 2`)) {
		t.Fatalf("route label missing:\n%s", grep(r.body, "httpd_requests"))
	}
	if bytes.Contains(r.body, []byte("12345")) {
		t.Fatal("raw path in metrics")
	}
	if !bytes.Contains(r.body, []byte(`securevision_httpd_request_duration_seconds_bucket{method="GET",route="/faces/:event_id"`)) {
		t.Fatal("latency histogram missing")
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestHealthFailsWhenStoreFails(t *testing.T) {
	e := newEnv(t, nil)
	e.store.Log.Close()
	r := e.do(t, "GET", "/health", "")
	if r.code != 503 || !bytes.Contains(r.body, []byte(`"ok":false`)) {
		t.Fatalf("health on closed store: %d %s", r.code, r.body)
	}
	if r := e.do(t, "POST", "/ingest", faceJSON("a", 1, "x")); r.code != 503 || !bytes.Contains(r.body, []byte(`"detail"`)) {
		t.Fatalf("ingest on closed store: %d %s", r.code, r.body)
	}
}
