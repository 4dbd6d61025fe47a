package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// holding lists the files under dir whose bytes contain s.
func holding(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file removed while walking
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			rel, _ := filepath.Rel(dir, p)
			hits = append(hits, rel)
		}
		return nil
	})
	return hits
}

// TestErasureAcrossCluster: DELETE /people/{name} taken by one node
// deletes the person on every node (the erasure event carries the ids and
// every node applies it), leaves the name in no file of either node's
// store, and securely deletes the messages from the stream (the stream's
// message files hold it no more, and a node built from the stream after
// the erasure never sees it).
func TestErasureAcrossCluster(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	b := openAPI(t, nc, "b")
	const name = "Qzxv Wyjk"
	ts := time.Now().UnixMilli()
	body := func(person string, n int) []byte {
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, fmt.Sprintf(`{"type":"face_match","ts_ms":%d,"frame_source_id":"cam-%d","payload":{"person_name":%q,"similarity":0.9,"bbox":[1,2,3,4]}}`, ts, i%2, person))
		}
		return []byte("[" + strings.Join(s, ",") + "]")
	}
	var last uint64
	for _, p := range [][]byte{body(name, 20), body("Someone Else", 10), body(name, 5)} {
		code, out, err := a.post(p, "")
		var ans ingestAnswer
		if err != nil || code != 200 || json.Unmarshal(out, &ans) != nil {
			t.Fatalf("ingest: %d %s %v", code, out, err)
		}
		last = ans.LastID
	}
	b.waitApplied(last)
	inStream := func() []string {
		var blocks []string
		for _, h := range holding(t, nc.Dir(), name) {
			if strings.Contains(h, string(filepath.Separator)+"streams"+string(filepath.Separator)) {
				blocks = append(blocks, h)
			}
		}
		return blocks
	}
	// The check below must be able to fail: the name reaches the stream's
	// message blocks (the servers write them in the background).
	for deadline := time.Now().Add(waitFor); len(inStream()) == 0 || len(holding(t, b.dir, name)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the name is not in the stream's files (%v) or node b's (%v) before the erasure", inStream(), holding(t, b.dir, name))
		}
	}

	req, _ := http.NewRequest(http.MethodDelete, a.srv.URL+"/people/"+url.PathEscape(name), nil)
	r, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		ID      uint64 `json:"id"`
		Payload struct {
			Erased int      `json:"erased"`
			IDs    []uint64 `json:"ids"`
		} `json:"payload"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || r.StatusCode != 200 || ev.Payload.Erased != 25 || len(ev.Payload.IDs) != 25 {
		t.Fatalf("erasure: %d %+v %v", r.StatusCode, ev, err)
	}
	r.Body.Close()
	b.waitApplied(ev.ID)
	for _, n := range []*api{a, b} {
		if code, out := n.get("/people"); code != 200 || bytes.Contains(out, []byte(name)) || !bytes.Contains(out, []byte("Someone Else")) {
			t.Fatalf("%s /people after the erasure: %d %s", n.name, code, out)
		}
		if code, _ := n.get(fmt.Sprintf("/events/%d", ev.Payload.IDs[0])); code != 404 {
			t.Fatalf("%s still serves erased event %d: %d", n.name, ev.Payload.IDs[0], code)
		}
	}
	// The node that took the request scrubbed before it answered; the
	// other scrubs in the background after applying the event.
	if hits := holding(t, a.dir, name); len(hits) > 0 {
		t.Fatalf("%q still in node a's %v", name, hits)
	}
	deadline := time.Now().Add(waitFor)
	for hits := holding(t, b.dir, name); len(hits) > 0; hits = holding(t, b.dir, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%q still in node b's %v after %s", name, hits, waitFor)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The stream: every erased message is gone from the stream's message
	// blocks on every server (secure delete overwrites them). The stream's
	// Raft log (under the system account's _js_ folder) keeps replicated
	// entries until the server compacts it: nats-server offers no call to
	// force that (see docs/api.md).
	if blocks := inStream(); len(blocks) > 0 {
		t.Fatalf("%q still in the stream's message blocks %v", name, blocks)
	}
	// A node built from the stream now has none of it, and the rest.
	c := openAPI(t, nc, "c")
	c.waitApplied(ev.ID)
	if code, out := c.get("/people"); code != 200 || bytes.Contains(out, []byte(name)) || !bytes.Contains(out, []byte("Someone Else")) {
		t.Fatalf("new node /people: %d %s", code, out)
	}
	for _, n := range []*api{a, b, c} {
		n.verify()
	}
}
