package httpd_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/projections"
)

// filesHolding lists the files under dir whose bytes contain s.
func filesHolding(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			hits = append(hits, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestErasePerson: after DELETE /people/{name}, nothing of the person is
// left: not in any answer, and not in any file of the store directory
// (tables, WAL, recycled WAL), while everyone else's events stay.
func TestErasePerson(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	const name = "Zyxwvut Qponmlk"
	now := time.Now().UnixMilli()
	var items []string
	for i := range 50 {
		items = append(items, faceJSON(fmt.Sprintf("cam%d", i%3), now+int64(i), name), faceJSON("cam0", now+int64(i), "Other Person"))
	}
	first := e.ingest(t, items...)
	// Recognised as someone else and corrected to name; recognised as
	// name and corrected away; corrected to name and then away again.
	other := e.ingest(t, faceJSON("cam1", now, "Stranger"))
	for _, c := range []struct {
		id   uint64
		body string
	}{
		{other, `{"person_name":"` + name + `"}`},
		{first, `{"person_name":"Somebody Else"}`},
		{first + 1, `{"person_name":"` + name + `","note":"was ` + name + `"}`},
		{first + 1, `{"person_name":"Other Person"}`},
	} {
		if r := e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", c.id), c.body); r.code != 201 {
			t.Fatalf("correction: %d %s", r.code, r.body)
		}
	}
	// Enough writes to flush and compact the first ones into tables.
	for range 20 {
		var filler []string
		for i := range 500 {
			filler = append(filler, plateJSON("cam9", now+int64(i), "FILL"+fmt.Sprint(i)))
		}
		e.ingest(t, filler...)
	}
	if e.store.Log.Scrub(t.Context()) != nil || len(filesHolding(t, dir, name)) == 0 {
		t.Fatal("the name is in no file before the erasure: the check below cannot fail")
	}

	r := e.do(t, "DELETE", "/people/"+url.PathEscape(name), "")
	if r.code != 200 {
		t.Fatalf("erase: %d %s", r.code, r.body)
	}
	var ev event
	r.json(t, &ev)
	if ev.Type != "erasure" || ev.Payload["erased"] != 51.0 || ev.Payload["subject"] != "person" || strings.Contains(string(r.body), name) {
		t.Fatalf("erasure event %s", r.body)
	}
	if hits := filesHolding(t, dir, name); len(hits) > 0 {
		t.Fatalf("%q is still in %v", name, hits)
	}
	// Nothing of the person in any answer; the others are all there.
	for _, p := range []string{"/events?limit=1000", "/events?type=correction", "/people", "/history/people/" + url.PathEscape(name)} {
		if r := e.do(t, "GET", p, ""); strings.Contains(string(r.body), name) || r.code != 200 {
			t.Fatalf("GET %s after erasure: %d %.300s", p, r.code, r.body)
		}
	}
	if r := e.do(t, "GET", fmt.Sprintf("/events/%d", first+2), ""); r.code != 404 {
		t.Fatalf("erased event still served: %d", r.code)
	}
	if r := e.do(t, "GET", fmt.Sprintf("/events/%d/snapshot.jpg", first+2), ""); r.code != 404 {
		t.Fatalf("erased snapshot still served: %d", r.code)
	}
	ids := pageIDs(t, e, "/history/people/Other%20Person?limit=1000")
	if len(ids) != 50 { // 49 recognised + first+1 corrected to it
		t.Fatalf("Other Person has %d events after the erasure, want 50", len(ids))
	}
	verifyClean(t, e.store.Log)
	// Restart: the views agree with what is left.
	e.srv.Close()
	e.store.Core.Close()
	e = identityEnv(t, dir)
	if r := e.do(t, "GET", "/people", ""); strings.Contains(string(r.body), name) {
		t.Fatalf("after restart: %s", r.body)
	}
	if hits := filesHolding(t, dir, name); len(hits) > 0 {
		t.Fatalf("%q is in %v after a restart", name, hits)
	}
}

// TestErasePlate: DELETE /history/plates/{text} removes every read of the
// plate, its corrections and its watchlist entries.
func TestErasePlate(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	now := time.Now().UnixMilli()
	const plate = "QJX7W2V"
	first := e.ingest(t, plateJSON("cam1", now, plate), plateJSON("cam1", now, "KEEP1"), plateJSON("cam2", now, "QJX-7W2V"))
	e.do(t, "PUT", "/watchlists/blacklist/"+plate, `{"note":"stolen"}`)
	e.do(t, "POST", fmt.Sprintf("/events/%d/corrections", first+1), `{"plate_text":"KEEP2"}`)
	r := e.do(t, "DELETE", "/history/plates/qjx7w2v", "")
	if r.code != 200 {
		t.Fatalf("erase: %d %s", r.code, r.body)
	}
	var ev event
	r.json(t, &ev)
	if ev.Payload["erased"] != 2.0 {
		t.Fatalf("erasure %s", r.body)
	}
	if hits := filesHolding(t, dir, plate); len(hits) > 0 {
		t.Fatalf("%q is still in %v", plate, hits)
	}
	for _, p := range []string{"/events?limit=1000", "/watchlists", "/events?type=watchlist_change", "/search/plates?q=QJX7W2V"} {
		if r := e.do(t, "GET", p, ""); strings.Contains(string(r.body), plate) {
			t.Fatalf("GET %s: %s", p, r.body)
		}
	}
	if got := pageIDs(t, e, "/history/plates/KEEP2"); len(got) != 1 {
		t.Fatalf("KEEP2 history %v", got)
	}
	verifyClean(t, e.store.Log)
}

func verifyClean(t *testing.T, l *eventlog.Log) {
	t.Helper()
	rep, err := projections.Verify(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("verify:\n%s", strings.Join(rep.Problems, "\n"))
	}
}
