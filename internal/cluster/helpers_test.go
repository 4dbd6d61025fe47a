package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/natstest"
	"github.com/securevision/events/projections"
	"github.com/securevision/events/wsfanout"
)

// waitFor bounds every wait of these tests: generous, because three
// JetStream servers, two API nodes and the race detector share a small
// machine, but never unbounded.
const waitFor = 90 * time.Second

func startNATS(t testing.TB) *natstest.Cluster {
	t.Helper()
	c, err := natstest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// node is one API node's core in cluster mode.
type node struct {
	t    testing.TB
	dir  string
	name string
	urls string
	mods []func(*cluster.Options)
	c    *core.Core
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func openNode(t testing.TB, nc *natstest.Cluster, name string, mods ...func(*cluster.Options)) *node {
	t.Helper()
	n := &node{t: t, dir: filepath.Join(t.TempDir(), name), name: name, urls: nc.URLs(), mods: mods}
	n.open()
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) open() {
	n.t.Helper()
	co := &cluster.Options{
		URLs: n.urls, Name: n.name, Replicas: 3,
		ConnectWait: waitFor, PublishTimeout: 5 * time.Second, ApplyTimeout: waitFor,
	}
	for _, m := range n.mods {
		m(co)
	}
	c, err := core.Open(core.Options{
		URL:        n.dir,
		Logger:     testLogger(n.t),
		Registerer: prometheus.NewRegistry(),
		Cluster:    co,
	})
	if err != nil {
		n.t.Fatalf("open %s: %v", n.name, err)
	}
	n.c = c
}

func (n *node) close() {
	if n.c != nil {
		if err := n.c.Close(); err != nil {
			n.t.Errorf("close %s: %v", n.name, err)
		}
		n.c = nil
	}
}

// waitApplied waits until the node applied through seq.
func (n *node) waitApplied(seq uint64) {
	n.t.Helper()
	deadline := time.Now().Add(waitFor)
	for n.c.Cluster().Applied() < seq {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s applied %d, want %d, within %s", n.name, n.c.Cluster().Applied(), seq, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dump returns every stored record of the node's log as "id json" lines.
func (n *node) dump() []string {
	n.t.Helper()
	it, err := n.c.Log().NewLogIter(0, ^uint64(0))
	if err != nil {
		n.t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%x", it.Value()))
	}
	return out
}

var bg = context.Background()

// api is an API node: the node's core behind the real HTTP API and
// WebSocket stream, wired as the server wires them in cluster mode.
type api struct {
	*node
	hub *wsfanout.Hub
	srv *httptest.Server
}

func openAPI(t testing.TB, nc *natstest.Cluster, name string, mods ...func(*cluster.Options)) *api {
	t.Helper()
	a := &api{node: openNode(t, nc, name, mods...)}
	a.serve()
	return a
}

func (a *api) serve() {
	t := a.t
	t.Helper()
	hub, err := wsfanout.New(wsfanout.Options{Log: a.c.Log(), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	a.c.Subscribe(hub.Publish)
	n := a.c.Cluster()
	s, err := httpd.New(httpd.Options{
		Log: a.c.Log(), View: cluster.Events{View: a.c.View(), Node: n}, Ingest: a.c.Ingest(),
		Stream: hub, StreamClients: hub.Clients, WSEnabled: true, RetentionDays: 30,
		Eraser: a.c.View(), Scrubber: a.c.Log(), StreamEraser: n,
		Health:   []httpd.HealthSection{{Name: "cluster", Value: func() any { return n.Health() }}},
		Gatherer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	a.hub = hub
	a.srv = httptest.NewServer(s.Handler())
	t.Cleanup(a.stop)
}

// stop closes the HTTP server and the streams (before the core: the
// cleanup registered by openNode runs after this one).
func (a *api) stop() {
	if a.srv != nil {
		a.srv.Close()
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		_ = a.hub.Shutdown(ctx)
		cancel()
		a.srv = nil
	}
}

// post sends a POST /ingest with an optional Idempotency-Key and returns
// the status and body; err is a transport error.
func (a *api) post(body []byte, key string) (int, []byte, error) {
	req, err := http.NewRequest("POST", a.srv.URL+"/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	r, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.StatusCode, b, err
}

func (a *api) get(path string) (int, []byte) {
	a.t.Helper()
	r, err := httpClient.Get(a.srv.URL + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// httpClient bounds every request of the tests.
var httpClient = &http.Client{Timeout: waitFor}

// ingestAnswer is POST /ingest's 200 body.
type ingestAnswer struct {
	Count   int    `json:"count"`
	FirstID uint64 `json:"first_id"`
	LastID  uint64 `json:"last_id"`
}

// faces is a JSON array of n face events named prefix-0 … prefix-(n-1).
func faces(prefix string, n int, ts int64) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"face_match","ts_ms":%d,"frame_source_id":"cam-%d","payload":{"person_name":"%s-%d","similarity":0.5,"bbox":[1,2,3,4]}}`, ts, i%3, prefix, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// verifyStore runs the offline consistency check on the node's store.
func (n *node) verify() {
	n.t.Helper()
	rep, err := projections.Verify(n.c.Log())
	if err != nil {
		n.t.Fatalf("%s verify: %v", n.name, err)
	}
	if len(rep.Problems) > 0 {
		n.t.Fatalf("%s verify:\n%s", n.name, strings.Join(rep.Problems, "\n"))
	}
}
