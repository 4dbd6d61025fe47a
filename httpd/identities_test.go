package httpd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/ingest/watchlist"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections/platesearch"
)

// identityEnv is a real server on a Pebble store with the watchlists
// wired as serve wires them (files as a seed, the API's changes win).
func identityEnv(t *testing.T, dir string) *env {
	t.Helper()
	return identityEnvOpts(t, storetest.Options{Dir: dir})
}

func identityEnvOpts(t testing.TB, o storetest.Options) *env {
	t.Helper()
	st := storetest.Open(t, o)
	lists, err := watchlist.New(watchlist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lists.SetOverrides(st.View)
	st.Ingest.SetLists(lists)
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, RetentionDays: 30,
		Lists: lists, WatchlistFiles: lists, Eraser: st.View, Scrubber: st.Log, Gatherer: st.Reg, Registerer: st.Reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: st, api: api}
}

func (e *env) ingest(t testing.TB, items ...string) (first uint64) {
	t.Helper()
	r := e.do(t, "POST", "/ingest", "["+strings.Join(items, ",")+"]", "Content-Type", "application/json")
	if r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	var res struct{ FirstID uint64 }
	json.Unmarshal(r.body, &struct {
		FirstID *uint64 `json:"first_id"`
	}{&res.FirstID})
	return res.FirstID
}

func TestCorrections(t *testing.T) {
	e := identityEnv(t, "")
	now := time.Now().UnixMilli()
	id := e.ingest(t, plateJSON("cam_a", now, "ABC1284"), faceJSON("cam_b", now, "John Doe"))
	plate, face := id, id+1

	// Wrong kinds, missing events, bad bodies.
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{fmt.Sprintf("/events/%d/corrections", plate), `{"person_name":"X"}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"plate_text":"X1"}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"person_name":"X","plate_text":"Y"}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"false_positive":false}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"person_name":"X","nme":"y"}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"person_name":""}`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"person_name":"X"} x`, 422},
		{fmt.Sprintf("/events/%d/corrections", face), `{"person_name":01}`, 422},
		{"/events/999/corrections", `{"person_name":"X"}`, 404},
		{"/events/abc/corrections", `{"person_name":"X"}`, 422},
	} {
		if r := e.do(t, "POST", tc.path, tc.body); r.code != tc.code {
			t.Errorf("POST %s %s: %d %s, want %d", tc.path, tc.body, r.code, r.body, tc.code)
		}
	}

	r := e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", plate), `{"plate_text":"ABC1234","note":"OCR"}`)
	if r.code != 201 {
		t.Fatalf("correct plate: %d %s", r.code, r.body)
	}
	var corr event
	r.json(t, &corr)
	if corr.Type != vocab.Correction || corr.Source != "cam_a" || corr.TsMs != now || corr.Payload["event_id"] != float64(plate) {
		t.Fatalf("correction event %+v", corr)
	}
	e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", face), `{"person_name":"Jane Roe"}`)

	// Every read of the plate carries the newest correction.
	var got struct {
		Correction map[string]any `json:"correction"`
	}
	for _, p := range []string{fmt.Sprintf("/events/%d", plate), fmt.Sprintf("/plates/%d", plate)} {
		r := e.do(t, "GET", p, "")
		r.json(t, &got)
		if got.Correction["plate_text"] != "ABC1234" || got.Correction["id"] != float64(corr.ID) || got.Correction["note"] != "OCR" {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
	var page []map[string]any
	e.do(t, "GET", "/events", "").json(t, &page)
	if len(page) != 2 || page[1]["correction"] == nil || page[0]["correction"].(map[string]any)["person_name"] != "Jane Roe" {
		t.Fatalf("/events: %v", page)
	}
	// Detections only without ?type=; corrections with it.
	e.do(t, "GET", "/events?type=correction", "").json(t, &page)
	if len(page) != 2 || page[0]["type"] != "correction" {
		t.Fatalf("?type=correction: %v", page)
	}
	// Histories and search follow the corrected values.
	e.do(t, "GET", "/history/plates/abc-1234", "").json(t, &page)
	if len(page) != 1 || page[0]["id"] != float64(plate) {
		t.Fatalf("history of ABC1234: %v", page)
	}
	e.do(t, "GET", "/history/plates/ABC1284", "").json(t, &page)
	if len(page) != 0 {
		t.Fatalf("history of ABC1284: %v", page)
	}
	e.do(t, "GET", "/history/people/Jane%20Roe", "").json(t, &page)
	if len(page) != 1 || page[0]["id"] != float64(face) {
		t.Fatalf("history of Jane Roe: %v", page)
	}
	var hits []map[string]any
	e.do(t, "GET", "/search/plates?q=A8C1Z34&max_distance=1", "").json(t, &hits)
	if len(hits) != 1 || hits[0]["plate_text"] != "ABC1234" || hits[0]["distance"] != 1.0 || hits[0]["count"] != 1.0 {
		t.Fatalf("search: %v", hits)
	}
	var people []map[string]any
	e.do(t, "GET", "/people", "").json(t, &people)
	if len(people) != 1 || people[0]["name"] != "Jane Roe" {
		t.Fatalf("people: %v", people)
	}
	// False positive: out of every history.
	e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", plate), `{"false_positive":true}`)
	e.do(t, "GET", "/history/plates/ABC1234", "").json(t, &page)
	if len(page) != 0 {
		t.Fatalf("history after false positive: %v", page)
	}
}

func TestWatchlistAPI(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	now := time.Now().UnixMilli()
	noList := func(text string) string {
		return strings.Replace(plateJSON("cam", now, text), `,"list_match":"whitelist"`, "", 1)
	}
	listMatch := func(id uint64) any {
		var ev event
		e.do(t, "GET", fmt.Sprintf("/events/%d", id), "").json(t, &ev)
		return ev.Payload["list_match"]
	}
	if r := e.do(t, "PUT", "/watchlists/blacklist/abc-123", `{"note":"stolen"}`); r.code != 200 {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	// The OCR tolerance: A8C123 matches ABC123.
	if got := listMatch(e.ingest(t, noList("A8C123"))); got != "blacklist" {
		t.Fatalf("list_match after PUT = %v", got)
	}
	// The API's watchlists survive a restart (they are replayed from the
	// log's watchlist_change events).
	e.srv.Close()
	if err := e.store.Core.Close(); err != nil {
		t.Fatal(err)
	}
	e = identityEnv(t, dir)
	if got := listMatch(e.ingest(t, noList("ABC123"))); got != "blacklist" {
		t.Fatalf("list_match after a restart = %v", got)
	}
	var lists map[string][]map[string]any
	e.do(t, "GET", "/watchlists", "").json(t, &lists)
	if len(lists["blacklist"]) != 1 || lists["blacklist"][0]["plate"] != "ABC123" || lists["blacklist"][0]["note"] != "stolen" {
		t.Fatalf("GET /watchlists: %v", lists)
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"PUT", "/watchlists/greylist/ABC", 404},
		{"PUT", "/watchlists/blacklist/---", 422},
		{"DELETE", "/watchlists/whitelist/ABC123", 404},
	} {
		if r := e.do(t, tc.method, tc.path, ""); r.code != tc.code {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.code, r.body)
		}
	}
	if r := e.do(t, "DELETE", "/watchlists/blacklist/ABC123", ""); r.code != 200 {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if got := listMatch(e.ingest(t, noList("ABC123"))); got != nil {
		t.Fatalf("list_match after DELETE = %v", got)
	}
	var changes []event
	e.do(t, "GET", "/events?type=watchlist_change&order=asc", "").json(t, &changes)
	if len(changes) != 2 || changes[0].Payload["op"] != "add" || changes[1].Payload["op"] != "remove" || changes[0].Source != vocab.OperatorSource {
		t.Fatalf("watchlist_change events: %+v", changes)
	}
}

// TestIdentitiesAgainstBruteForce: random detections, corrections and
// retention runs; after each step, the plate search, the plate and person
// histories and the people agree with a computation over the log itself,
// also after a restart.
func TestIdentitiesAgainstBruteForce(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	rng := rand.New(rand.NewPCG(3, 4))
	plates := []string{"ABC123", "A8C123", "XYZ9", "OO11", "0011", "SZ52", "5Z52", "QWERTY1"}
	people := []string{"Ann", "Bob", "unknown", "Cy"}
	now := time.Now()
	type det struct {
		id      uint64
		face    bool
		name    string // corrected value ("" after a false positive)
		ts      int64
		cam     string
		expired bool
	}
	var dets []*det
	check := func(e *env) {
		t.Helper()
		verifyClean(t, e.store.Log) // the identity views agree with the log
		live := func(d *det) bool { return !d.expired && d.name != "" }
		// Histories.
		for _, p := range plates {
			var want []uint64
			for _, d := range dets {
				if !d.face && live(d) && d.name == p {
					want = append(want, d.id)
				}
			}
			got := pageIDs(t, e, "/history/plates/"+p+"?order=asc&limit=3")
			if !slices.Equal(got, want) {
				t.Fatalf("history %s = %v, want %v", p, got, want)
			}
		}
		for _, n := range people {
			var want []uint64
			for _, d := range dets {
				if d.face && live(d) && d.name == n {
					want = append(want, d.id)
				}
			}
			if got := pageIDs(t, e, "/history/people/"+url.PathEscape(n)+"?limit=2"); !slices.Equal(got, reversed(want)) {
				t.Fatalf("history %s = %v, want %v", n, got, reversed(want))
			}
		}
		// People.
		var ppl []struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		e.do(t, "GET", "/people", "").json(t, &ppl)
		wantP := map[string]int{}
		for _, d := range dets {
			if d.face && live(d) {
				wantP[d.name]++
			}
		}
		if len(ppl) != len(wantP) {
			t.Fatalf("people %v, want %v", ppl, wantP)
		}
		for _, p := range ppl {
			if wantP[p.Name] != p.Count {
				t.Fatalf("people %v, want %v", ppl, wantP)
			}
		}
		// Search: every query, every distance, against the distance
		// function over the plates the log still holds.
		seen := map[string]int{}
		for _, d := range dets {
			if !d.face && live(d) {
				seen[d.name]++
			}
		}
		for _, q := range []string{"ABC123", "A*", "?Z52", "0O11", "QWERTY", "*1"} {
			for _, md := range []float64{0, 0.5, 1, 2} {
				type hit struct {
					Plate string  `json:"plate_text"`
					Dist  float64 `json:"distance"`
					Count int     `json:"count"`
				}
				var got []hit
				e.do(t, "GET", fmt.Sprintf("/search/plates?q=%s&max_distance=%g", url.QueryEscape(q), md), "").json(t, &got)
				var want []hit
				for p, n := range seen {
					d, err := platesearch.Distance(q, p)
					if err != nil {
						t.Fatal(err)
					}
					if d <= md {
						want = append(want, hit{p, d, n})
					}
				}
				slices.SortFunc(want, func(a, b hit) int {
					if a.Dist != b.Dist {
						return int(2*a.Dist - 2*b.Dist)
					}
					return strings.Compare(a.Plate, b.Plate)
				})
				if !slices.Equal(got, want) {
					t.Fatalf("search %q %g = %v, want %v", q, md, got, want)
				}
			}
		}
	}
	for step := range 12 {
		var items []string
		for range 1 + rng.IntN(20) {
			d := &det{face: rng.IntN(2) == 0, cam: fmt.Sprintf("cam%d", rng.IntN(3))}
			// A third of the events are old enough to expire.
			d.ts = now.Add(-time.Duration(rng.IntN(60)) * 24 * time.Hour).UnixMilli()
			if d.face {
				d.name = people[rng.IntN(len(people))]
				items = append(items, faceJSON(d.cam, d.ts, d.name))
			} else {
				d.name = plates[rng.IntN(len(plates))]
				items = append(items, plateJSON(d.cam, d.ts, d.name))
			}
			dets = append(dets, d)
		}
		first := e.ingest(t, items...)
		for i := range items {
			dets[len(dets)-len(items)+i].id = first + uint64(i)
		}
		for range rng.IntN(6) {
			d := dets[rng.IntN(len(dets))]
			if d.expired {
				continue
			}
			var body string
			switch {
			case rng.IntN(5) == 0:
				body, d.name = `{"false_positive":true}`, ""
			case d.face:
				d.name = people[rng.IntN(len(people))]
				body = fmt.Sprintf(`{"person_name":%q}`, d.name)
			default:
				d.name = plates[rng.IntN(len(plates))]
				body = fmt.Sprintf(`{"plate_text":%q}`, d.name)
			}
			if r := e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", d.id), body); r.code != 201 {
				t.Fatalf("correct %d: %d %s", d.id, r.code, r.body)
			}
		}
		if step%4 == 3 {
			cutoff := now.Add(-30 * 24 * time.Hour).UnixMilli()
			if _, err := e.store.View.Cleanup(context.Background(), cutoff); err != nil {
				t.Fatal(err)
			}
			for _, d := range dets {
				d.expired = d.expired || d.ts < cutoff
			}
		}
		check(e)
	}
	// A restart keeps every projection.
	e.srv.Close()
	if err := e.store.Core.Close(); err != nil {
		t.Fatal(err)
	}
	check(identityEnv(t, dir))
}

// pageIDs follows next links and returns the ids in page order.
func pageIDs(t *testing.T, e *env, path string) []uint64 {
	t.Helper()
	var ids []uint64
	for path != "" {
		r := e.do(t, "GET", path, "")
		if r.code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.code, r.body)
		}
		var page []event
		r.json(t, &page)
		for _, ev := range page {
			ids = append(ids, ev.ID)
		}
		path = ""
		if l := r.hdr.Get("Link"); l != "" {
			path = l[1:strings.Index(l, ">")]
		}
	}
	return ids
}

func reversed(x []uint64) []uint64 {
	y := slices.Clone(x)
	slices.Reverse(y)
	return y
}
