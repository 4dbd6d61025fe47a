package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

// scrape keeps the unlabelled gauges and counters of the text format.
func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 2051
# TYPE process_open_fds gauge
process_open_fds 1043
# TYPE go_gc_gogc_percent gauge
go_gc_gogc_percent 100
# TYPE go_memstats_next_gc_bytes gauge
go_memstats_next_gc_bytes 2.9360128e+07
# TYPE securevision_ingest_appended_events_total counter
securevision_ingest_appended_events_total{type="face_match"} 5
securevision_ingest_appended_events_total{type="plate_read"} 7
# TYPE securevision_eventlog_appended_total counter
securevision_eventlog_appended_total 12
# TYPE securevision_ingest_request_events histogram
securevision_ingest_request_events_bucket{le="1"} 0
securevision_ingest_request_events_bucket{le="+Inf"} 2
securevision_ingest_request_events_sum 12
securevision_ingest_request_events_count 2
`))
	}))
	defer srv.Close()
	m, err := scrape(srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 2051, "process_open_fds": 1043, "go_gc_gogc_percent": 100,
		"go_memstats_next_gc_bytes": 29360128, "securevision_eventlog_appended_total": 12}
	if len(m) != len(want) {
		t.Errorf("scrape: %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if got := liveHeapMB(m); math.Abs(got-14) > 0.01 {
		t.Errorf("liveHeapMB = %v, want 14", got)
	}
}
