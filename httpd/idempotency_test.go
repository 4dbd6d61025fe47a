package httpd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A repeat of a keyed POST /ingest with the same body appends nothing and
// gets the first answer, also after a restart of the store; a different
// body under the same key is 422; concurrent repeats store the batch once.
func TestIngestIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(`[{"type":"face_match","ts_ms":%d,"frame_source_id":"cam","payload":{"person_name":"a","similarity":0.5,"bbox":[1,2,3,4]}},`+
		`{"type":"face_match","ts_ms":%d,"frame_source_id":"cam","payload":{"person_name":"b","similarity":0.5,"bbox":[1,2,3,4]}}]`, now, now)
	first := e.do(t, "POST", "/ingest", body, "Content-Type", "application/json", "Idempotency-Key", "k-1")
	if first.code != 200 || first.hdr.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s %v", first.code, first.body, first.hdr)
	}
	again := e.do(t, "POST", "/ingest", body, "Content-Type", "application/json", "Idempotency-Key", "k-1")
	if again.code != 200 || string(again.body) != string(first.body) || again.hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat: %d %s (first %s) %v", again.code, again.body, first.body, again.hdr)
	}
	if got := e.store.Log.LastID(); got != 2 {
		t.Fatalf("repeat appended: last id %d", got)
	}
	other := e.do(t, "POST", "/ingest", strings.Replace(body, `"a"`, `"c"`, 1), "Content-Type", "application/json", "Idempotency-Key", "k-1")
	if other.code != 422 || !strings.Contains(string(other.body), `"loc":["header","Idempotency-Key"]`) {
		t.Fatalf("different body, same key: %d %s", other.code, other.body)
	}
	// The same bytes as NDJSON are a different request.
	nd := e.do(t, "POST", "/ingest", body, "Content-Type", "application/x-ndjson", "Idempotency-Key", "k-1")
	if nd.code != 422 {
		t.Fatalf("same bytes as ndjson: %d %s", nd.code, nd.body)
	}
	for _, bad := range []string{strings.Repeat("x", 256), "caf\u00e9"} {
		r := e.do(t, "POST", "/ingest", body, "Content-Type", "application/json", "Idempotency-Key", bad)
		if r.code != 422 {
			t.Fatalf("key %q: %d %s", bad, r.code, r.body)
		}
	}
	// An invalid body under a key stores nothing, and the key stays free.
	if r := e.do(t, "POST", "/ingest", `[{"type":"nope"}]`, "Content-Type", "application/json", "Idempotency-Key", "k-2"); r.code != 422 {
		t.Fatalf("invalid body: %d", r.code)
	}
	var wg sync.WaitGroup
	answers := make([]string, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.srv.URL+"/ingest", strings.NewReader(body))
			req.Header.Set("Idempotency-Key", "k-2")
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Body.Close()
			var res struct {
				Count   int `json:"count"`
				FirstID int `json:"first_id"`
				LastID  int `json:"last_id"`
			}
			_ = json.NewDecoder(r.Body).Decode(&res)
			answers[i] = fmt.Sprint(r.StatusCode, res)
		}()
	}
	wg.Wait()
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Fatalf("concurrent repeats answered differently: %q", answers)
		}
	}
	if got := e.store.Log.LastID(); got != 4 {
		t.Fatalf("concurrent repeats: last id %d, want 4 (stored once)", got)
	}
}
