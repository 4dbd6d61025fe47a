package bench

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/vocab"
)

const wrkSample = `Running 3s test @ http://127.0.0.1:8000/health
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.34us  200.00us   5.00ms   80.00%
    Req/Sec    30.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  400.00us
     75%  600.00us
     90%  800.00us
     99%    1.50ms
  180000 requests in 3.00s, 50.00MB read
  Non-2xx or 3xx responses: 5
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  60000.00
Transfer/sec:     16.67MB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{Requests: 180000, Errors: 3, Non2xx: 5, Duration: 3 * time.Second, RPS: 60000,
		P50: 400 * time.Microsecond, P90: 800 * time.Microsecond, P99: 1500 * time.Microsecond, Max: 5 * time.Millisecond}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if _, err := ParseWrk("garbage"); err == nil {
		t.Fatal("no error for garbage")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkAppend/batch=1-2     	    1000	   2000000 ns/op	   0.11 MB/s	       500.0 events/s	     512 B/op	       7 allocs/op
BenchmarkAppend/batch=1-2     	    1000	   2000000 ns/op	   0.11 MB/s	       700.0 events/s	     512 B/op	       7 allocs/op
BenchmarkAppend/batch=1-2     	    1000	   2000000 ns/op	   0.11 MB/s	       600.0 events/s	     512 B/op	       7 allocs/op
BenchmarkHealth               	  500000	      2000 ns/op
PASS
`
	rs, err := ParseGoBench(strings.NewReader(out))
	if err != nil || len(rs) != 4 {
		t.Fatalf("%v, %d results", err, len(rs))
	}
	if rs[0].Name != "Append/batch=1" || rs[0].Procs != 2 || rs[3].Name != "Health" {
		t.Fatalf("names: %+v", rs)
	}
	if m, n := Median(rs, "Append/batch=1", "events/s"); m != 600 || n != 3 {
		t.Fatalf("median %v of %d", m, n)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.Quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.04 {
			t.Errorf("q%v = %v, want %v within 4%%", c.q, got, c.want)
		}
	}
	for v := uint64(0); v < 1<<20; v = v*3/2 + 1 {
		if i := histIndex(v); histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d [.., %d]", v, i, histUpper(i))
		}
	}
}

func TestGeneratorBodiesDecode(t *testing.T) {
	g := NewGenerator(3, nil)
	for _, n := range []int{1, 500} {
		evs, err := ingest.Decode(bytes.NewReader(g.Body(n, 1_700_000_000_000)), false)
		if err != nil || len(evs) != n {
			t.Fatalf("n=%d: %v (%d events)", n, err, len(evs))
		}
	}
	faces := 0
	for i := 0; i < 1000; i++ {
		if g.Event(1).Type == vocab.FaceMatch {
			faces++
		}
	}
	if faces < 400 || faces > 600 {
		t.Fatalf("%d faces in 1000 events", faces)
	}
}

func TestGoRunner(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	res, err := (&GoRunner{}).Run(context.Background(), LoadSpec{Name: "t", BaseURL: srv.URL,
		Requests: []Request{{Path: "/"}, {Path: "/bad"}}, Conns: 4, Duration: 300 * time.Millisecond, MaxRequests: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests > 2000 || res.Non2xx == 0 || res.Non2xx == res.Requests || res.P99 <= 0 {
		t.Fatalf("%+v", res)
	}
	if _, err := (&GoRunner{}).Run(context.Background(), LoadSpec{Name: "t", BaseURL: "http://192.0.2.1:80",
		Requests: []Request{{Path: "/"}}, Conns: 1, Duration: time.Second}); err == nil {
		t.Fatal("non-loopback target accepted")
	}
}

// Metric and WaitCompactions read the real server's /metrics.
func TestServerMetric(t *testing.T) {
	ctx := context.Background()
	srv, err := StartServer(ctx, ServerOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	if v, err := srv.Metric(ctx, "securevision_pebble_compactions_in_progress"); err != nil || v < 0 {
		t.Fatalf("compactions in progress: %v, %v", v, err)
	}
	if _, err := srv.Metric(ctx, "securevision_no_such_metric"); err == nil {
		t.Fatal("a missing metric was read")
	}
	if _, settled, err := srv.WaitCompactions(ctx, 500*time.Millisecond, 10*time.Second); err != nil || !settled {
		t.Fatalf("an empty store did not settle: %v", err)
	}
}
