package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
)

// TestExportServerFollowsLinks: `export --server` walks the API's next
// links, which are relative references, to the last page.
func TestExportServerFollowsLinks(t *testing.T) {
	st := storetest.Open(t, storetest.Options{})
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	const n = 2500 // three pages of at most 1000
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
	var out bytes.Buffer
	got, err := exportServer(context.Background(), srv.URL+"/", "", 100, &out)
	if err != nil || got != n-100 {
		t.Fatalf("exportServer: %d events, %v; want %d", got, err, n-100)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != n-100 || !strings.HasPrefix(lines[0], `{"id":101,`) || !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf(`{"id":%d,`, n)) {
		t.Fatalf("export: %d lines, first %.40s, last %.40s", len(lines), lines[0], lines[len(lines)-1])
	}
}
