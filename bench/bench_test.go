package bench

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// fixtureEvents is the size of the store the request benchmarks read:
// big enough for several Pebble levels, small enough to build in a second.
const fixtureEvents = 100_000

// queryFixture is a store of fixtureEvents events behind httpd's handler.
type queryFixture struct {
	dir     string
	st      *storetest.Store
	h       http.Handler
	faceID  uint64
	since   int64
	source  string
	cleanup func()
}

// fixture is built lazily by the first benchmark that needs it (the unit
// tests do not) and removed by TestMain.
var fixture = sync.OnceValues(func() (*queryFixture, error) {
	dir, err := os.MkdirTemp("", "bench-fixture-")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	info, err := BuildStore(dir, fixtureEvents, WithClock(func() time.Time { return now }))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	st, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &queryFixture{dir: dir, st: st, since: now.Add(-5 * time.Minute).UnixMilli(), source: info.Sources[3],
		cleanup: func() { st.Log.Close(); os.RemoveAll(dir) }}
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, Gatherer: st.Reg, Registerer: st.Reg})
	if err != nil {
		f.cleanup()
		return nil, err
	}
	f.h = api.Handler()
	// A face event from the middle of the log.
	_, pg, err := st.View.Query(projections.Query{Type: vocab.FaceMatchCode, Before: info.LastID / 2, Limit: 1}, nil)
	if err != nil || pg.Count != 1 {
		f.cleanup()
		return nil, fmt.Errorf("find a face event: %v (%d found)", err, pg.Count)
	}
	f.faceID = pg.Cursor
	return f, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if f, err := fixture(); err == nil && f != nil {
		f.cleanup()
	}
	os.Exit(code)
}

func getFixture(b *testing.B) *queryFixture {
	b.Helper()
	f, err := fixture()
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// serveGET measures one GET through the whole handler chain (router,
// metrics, headers, handler) with an httptest.ResponseRecorder per request.
func serveGET(b *testing.B, h http.Handler, target string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body.String())
		}
		bytes = rec.Body.Len()
	}
	b.ReportMetric(float64(bytes), "resp-bytes")
}

// BenchmarkEventsPage is GET /events?limit=100: the newest page.
func BenchmarkEventsPage(b *testing.B) {
	f := getFixture(b)
	serveGET(b, f.h, "/events?limit=100")
}

// BenchmarkEventsFiltered are the filtered queries of the load test, and
// the unfiltered page of the same size as the source query.
func BenchmarkEventsFiltered(b *testing.B) {
	f := getFixture(b)
	for _, c := range []struct{ name, target string }{
		{"type_since_100", "/events?type=plate_read&since=" + strconv.FormatInt(f.since, 10) + "&limit=100"},
		{"source_1000", "/events?source=" + f.source + "&limit=1000"},
		{"unfiltered_1000", "/events?limit=1000"},
	} {
		b.Run(c.name, func(b *testing.B) { serveGET(b, f.h, c.target) })
	}
}

// BenchmarkFaceByID is GET /faces/{id} of an existing face event.
func BenchmarkFaceByID(b *testing.B) {
	f := getFixture(b)
	serveGET(b, f.h, "/faces/"+strconv.FormatUint(f.faceID, 10))
}

// BenchmarkHealth is GET /health.
func BenchmarkHealth(b *testing.B) {
	f := getFixture(b)
	serveGET(b, f.h, "/health")
}

// BenchmarkIngestBatch1000 is POST /ingest of a JSON array of 1000 events
// into a fresh store: decode, validate, append with fsync, answer.
func BenchmarkIngestBatch1000(b *testing.B) {
	st, err := storetest.OpenErr(b.TempDir(), storetest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Log.Close()
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, Gatherer: st.Reg, Registerer: st.Reg})
	if err != nil {
		b.Fatal(err)
	}
	h := api.Handler()
	gen := NewGenerator(7, nil)
	bodies := make([][]byte, 8)
	ts := time.Now().UnixMilli()
	for i := range bodies {
		bodies[i] = gen.Body(1000, ts+int64(i)*1000)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/ingest", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("POST /ingest: %d %s", rec.Code, rec.Body.String())
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecorderOverhead is the harness alone (a request, a recorder
// and a handler that writes 2 bytes): subtract it from the rows above to
// get the server's own allocations.
func BenchmarkRecorderOverhead(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	serveGET(b, h, "/health")
}
