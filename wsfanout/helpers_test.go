package wsfanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/internal/wstest"
	"github.com/securevision/events/projections"
)

// testEnv is a real store on t.TempDir opened by internal/storetest with
// core.Open, the server's own wiring (log, projections as its Indexer,
// ingest), a hub subscribed to the core's commit bus and an httptest
// server.
type testEnv struct {
	t    *testing.T
	log  *eventlog.Log
	view *projections.View
	ing  *ingest.Service
	hub  *Hub
	reg  *prometheus.Registry
	srv  *httptest.Server
	addr string // host:port
}

func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	st := storetest.Open(t, storetest.Options{})
	e := &testEnv{t: t, log: st.Log, view: st.View, ing: st.Ingest, reg: st.Reg}
	opts.Log = st.Log
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	opts.Registerer = e.reg
	var err error
	if e.hub, err = New(opts); err != nil {
		t.Fatal(err)
	}
	st.Subscribe(e.hub.Publish)
	e.srv = httptest.NewServer(e.hub)
	e.addr = strings.TrimPrefix(e.srv.URL, "http://")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.hub.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		e.srv.Close()
		if err := st.Log.Close(); err != nil {
			t.Errorf("close log: %v", err)
		}
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ev builds a valid event: kind "f" face, "p" plate.
func ev(kind string, src string, ts int64) ingest.Event {
	if kind == "p" {
		return ingest.Event{Type: vocab.PlateRead, TsMs: ts, Source: src,
			Plate: &ingest.Plate{PlateText: "ABC123", Confidence: 0.8, Region: "US-CA", BBox: &ingest.BBox{1, 2, 3, 4}}}
	}
	return ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: src,
		Face: &ingest.Face{PersonName: "Jane", Similarity: 0.9, BBox: ingest.BBox{1, 2, 3, 4}}}
}

// appendN appends n face events from cam in one request; returns the last id.
func (e *testEnv) appendN(n int, src string) uint64 {
	e.t.Helper()
	evs := make([]ingest.Event, n)
	for i := range evs {
		evs[i] = ev("f", src, 0)
	}
	return e.appendEvs(evs)
}

func (e *testEnv) appendEvs(evs []ingest.Event) uint64 {
	e.t.Helper()
	res, err := e.ing.Append(context.Background(), evs)
	if err != nil {
		e.t.Fatalf("append: %v", err)
	}
	return res.LastID
}

// dialRaw connects to /stream?query with internal/wstest's client, which
// reads only when asked (a stalled client simply does not read); rcvBuf >
// 0 shrinks SO_RCVBUF first. A non-101 answer is returned as resp with a
// nil client.
func dialRaw(t *testing.T, addr, query string, rcvBuf int) (*wstest.Conn, *http.Response) {
	t.Helper()
	c, resp, err := wstest.Dial("ws://"+addr+"/stream?"+query, wstest.Options{Timeout: 5 * time.Second, ReadBuffer: rcvBuf})
	if c == nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// msg is the part of a stream message the tests look at.
type msg struct {
	ID               uint64 `json:"id"`
	Type             string `json:"type"`
	Source           string `json:"frame_source_id"`
	FirstAvailableID uint64 `json:"first_available_id"`
	Detail           string `json:"detail"`
	Data             string `json:"data"`
}

func parseMsg(t testing.TB, p []byte) msg {
	t.Helper()
	var m msg
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("bad message %q: %v", p, err)
	}
	return m
}

// readEvents reads event messages until one with id >= until arrives; it
// returns every message read (gap notices included) and the close frame if
// the stream ended first.
func readEvents(t *testing.T, c *wstest.Conn, until uint64, timeout time.Duration) ([]msg, *wstest.Frame, error) {
	t.Helper()
	var out []msg
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			return out, nil, err
		}
		switch f.Op {
		case opText:
			m := parseMsg(t, f.Payload)
			out = append(out, m)
			if m.ID >= until && m.ID != 0 {
				return out, nil, nil
			}
		case opClose:
			return out, &f, nil
		}
	}
}

// checkSeq fails unless ms are exactly the events want, in order.
func checkSeq(t *testing.T, name string, ms []msg, want []uint64) {
	t.Helper()
	if len(ms) != len(want) {
		t.Fatalf("%s: got %d messages, want %d (first %v last %v)", name, len(ms), len(want), head(ms), tail(ms))
	}
	for i := range ms {
		if ms[i].ID != want[i] {
			t.Fatalf("%s: message %d has id %d, want %d", name, i, ms[i].ID, want[i])
		}
	}
}

func span(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func head(ms []msg) any {
	if len(ms) == 0 {
		return nil
	}
	return ms[0]
}

func tail(ms []msg) any {
	if len(ms) == 0 {
		return nil
	}
	return ms[len(ms)-1]
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fmtID(id uint64) string { return fmt.Sprint(id) }

var _ = sync.Mutex{}

type ingest_Event = ingest.Event

func errorsAs(err error, target any) bool { return errors.As(err, target) }
