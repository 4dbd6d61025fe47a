package httpd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/securevision/events/internal/storetest"
)

// fuzzEnv is identityEnv on an in-memory file system, with a plate read
// (id 1) and a face match (id 2) to correct.
func fuzzEnv(f *testing.F) *env {
	e := identityEnvOpts(f, storetest.Options{FS: vfs.NewMem()})
	now := time.Now().UnixMilli()
	e.ingest(f, plateJSON("cam", now, "ABC123"), faceJSON("cam", now, "Ann"))
	return e
}

// checkAnswer fails unless r is one of codes with a JSON body.
func checkAnswer(t *testing.T, what string, r resp, codes ...int) {
	t.Helper()
	for _, c := range codes {
		if r.code == c {
			if !json.Valid(r.body) {
				t.Fatalf("%s: %d with a body that is not JSON: %q", what, r.code, r.body)
			}
			return
		}
	}
	t.Fatalf("%s: status %d %s, want one of %v", what, r.code, r.body, codes)
}

// FuzzCorrectionBody: any body on POST /events/{id}/corrections is 201
// (then both the correction and the corrected event read back as JSON) or
// a clear 4xx; never a panic or a 5xx.
func FuzzCorrectionBody(f *testing.F) {
	for _, s := range []string{`{"plate_text":"ABC1234"}`, `{"person_name":"Bo","note":"x"}`, `{"false_positive":true}`,
		`{"person_name":"Bo","plate_text":"X"}`, `{"person_name":null}`, `{"note":"\u0000"}`, `[]`, `{"person_name":"a"}x`,
		`{"person_name":"\ud800"}`, `{"plate_text":"---"}`, `{"false_positive":1}`, `{"person_name":"` + string(bytes.Repeat([]byte("é"), 300)) + `"}`} {
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, id uint8, body string) {
		r := e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", id), body)
		checkAnswer(t, "correction", r, 201, 404, 413, 422)
		if r.code == 201 {
			checkAnswer(t, "corrected event", e.do(t, "GET", fmt.Sprintf("/events/%d", id), ""), 200)
		}
	})
}

// FuzzWatchlistPut: any plate and body on PUT /watchlists/{list}/{plate}.
func FuzzWatchlistPut(f *testing.F) {
	for _, s := range []string{"ABC123", "ab-c 1", "", "---", "Ä123", "%00", "A/B", string(bytes.Repeat([]byte("A"), 40))} {
		f.Add("blacklist", s, `{"note":"stolen"}`)
		f.Add("whitelist", s, ``)
	}
	f.Add("greylist", "ABC", `{"note":1}`)
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, list, plate, body string) {
		p := "/watchlists/" + url.PathEscape(list) + "/" + url.PathEscape(plate)
		checkAnswer(t, "PUT", e.do(t, "PUT", p, body), 200, 404, 413, 422)
		checkAnswer(t, "DELETE", e.do(t, "DELETE", p, ""), 200, 404, 422)
		checkAnswer(t, "GET", e.do(t, "GET", "/watchlists", ""), 200)
	})
}

// FuzzSearchQuery: any q, max_distance and limit on GET /search/plates
// (as a client sends them: URL-encoded).
func FuzzSearchQuery(f *testing.F) {
	for _, s := range [][3]string{{"ABC1Z34", "1", "50"}, {"*", "", ""}, {"?*?", "4", "500"}, {"", "", ""}, {"A", "0.3", ""},
		{"A", "NaN", ""}, {"A", "", "0"}, {string(bytes.Repeat([]byte("*A"), 100)), "2", "1"}, {"\xff", "-1", "x"}, {"ÄÖ 1", "1e308", "9999999999"}} {
		f.Add(s[0], s[1], s[2])
	}
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, q, maxDist, limit string) {
		v := url.Values{"q": {q}}
		if maxDist != "" {
			v.Set("max_distance", maxDist)
		}
		if limit != "" {
			v.Set("limit", limit)
		}
		r := e.do(t, "GET", "/search/plates?"+v.Encode(), "")
		checkAnswer(t, "search", r, 200, 422)
	})
}
