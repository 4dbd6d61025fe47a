package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
)

// exportFixture serves the real API on a store of n plate reads (ids 1
// to n), through wrap when it is not nil.
func exportFixture(t *testing.T, n int, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	st := storetest.Open(t, storetest.Options{})
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest})
	if err != nil {
		t.Fatal(err)
	}
	h := api.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"plate_read","ts_ms":%d,"frame_source_id":"cam","payload":{"plate_text":"P%d","confidence":0.5,"region":"US-CA"}}`+"\n", 1704067200000+i, i)
	}
	res, err := http.Post(srv.URL+"/ingest", "application/x-ndjson", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("ingest: %d", res.StatusCode)
	}
	return srv
}

// checkExport checks that out holds events 101 to n, one per line.
func checkExport(t *testing.T, out string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n-100 || !strings.HasPrefix(lines[0], `{"id":101,`) || !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf(`{"id":%d,`, n)) {
		t.Fatalf("export: %d lines, first %.40s, last %.40s", len(lines), lines[0], lines[len(lines)-1])
	}
}

// TestExportServerFollowsLinks: `export --server` walks the API's next
// links, which are relative references, to the last page.
func TestExportServerFollowsLinks(t *testing.T) {
	const n = 2500 // three pages of at most 1000
	srv := exportFixture(t, n, nil)
	var out bytes.Buffer
	got, err := exportServer(context.Background(), srv.URL+"/", "", 100, &out)
	if err != nil || got != n-100 {
		t.Fatalf("exportServer: %d events, %v; want %d", got, err, n-100)
	}
	checkExport(t, out.String(), n)
}

// TestExportServerRetryAfter: a page refused with 429 and Retry-After: 1
// (the API's rate limit) is asked again after that second, and the export
// then follows the next links to the end.
func TestExportServerRetryAfter(t *testing.T) {
	const n = 2500
	var (
		mu    sync.Mutex
		pages []string // every GET, in order
	)
	srv := exportFixture(t, n, func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				mu.Lock()
				pages = append(pages, r.URL.RequestURI())
				refuse := len(pages) == 2 // the second page, once
				mu.Unlock()
				if refuse {
					w.Header().Set("Retry-After", "1")
					http.Error(w, `{"detail":"Rate limit exceeded"}`, http.StatusTooManyRequests)
					return
				}
			}
			api.ServeHTTP(w, r)
		})
	})
	var out bytes.Buffer
	start := time.Now()
	got, err := exportServer(context.Background(), srv.URL, "", 100, &out)
	took := time.Since(start)
	if err != nil || got != n-100 {
		t.Fatalf("exportServer: %d events, %v; want %d", got, err, n-100)
	}
	checkExport(t, out.String(), n)
	mu.Lock()
	defer mu.Unlock()
	if len(pages) != 4 || pages[1] != pages[2] {
		t.Fatalf("GETs %q: want 3 pages with the second asked twice", pages)
	}
	if took < time.Second {
		t.Fatalf("export took %v: it did not wait the Retry-After second", took)
	}
}

// A server that keeps refusing (503 here) is asked exportRetries more
// times, then the export fails with its answer; a refusal whose wait
// outlasts ctx ends the export when ctx is done.
func TestExportServerGivesUp(t *testing.T) {
	var gets atomic.Int32
	busy := func(retryAfter string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gets.Add(1)
			w.Header().Set("Retry-After", retryAfter)
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		return srv
	}

	_, err := exportServer(context.Background(), busy("0").URL, "", 0, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "503") || gets.Load() != exportRetries+1 {
		t.Fatalf("always 503: %d requests, %v; want %d and an error", gets.Load(), err, exportRetries+1)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = exportServer(ctx, busy("20").URL, "", 0, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Retry-After 20 with a 200ms context: %v after %v", err, time.Since(start))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                        exportDefaultWait,
		"soon":                    exportDefaultWait,
		"-1":                      exportDefaultWait,
		"0":                       0,
		" 2 ":                     2 * time.Second,
		"3600":                    exportMaxWait,
		"99999999999999999999999": exportMaxWait,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		now.Add(time.Hour).Format(http.TimeFormat):        exportMaxWait,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestExportStoreAfterTheEnd: --after at or past the last id exports
// nothing (after+1 wrapped to 0 at the largest id and exported everything).
func TestExportStoreAfterTheEnd(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, storetest.Options{Dir: dir})
	st.Append(t, storetest.Plate("cam", 1704067200000, "ABC1234"), storetest.Plate("cam", 1704067200001, "ABC1235"))
	if err := st.Log.Close(); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{2, 3, 1<<64 - 1} {
		var out bytes.Buffer
		n, err := exportStore(dir, after, &out)
		if err != nil || n != 0 || out.Len() != 0 {
			t.Errorf("export --after %d: %d events, %v", after, n, err)
		}
	}
	var out bytes.Buffer
	if n, err := exportStore(dir, 1, &out); err != nil || n != 1 {
		t.Errorf("export --after 1: %d events, %v", n, err)
	}
}
