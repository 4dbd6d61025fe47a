package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/lease"
	"github.com/securevision/events/internal/natstest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/webhook"
)

// clusterWait bounds the waits of the cluster tests: three JetStream
// servers, two API nodes and the race detector share a small machine.
const clusterWait = 90 * time.Second

// clusterTTL is the lease TTL of these tests: short, so a take-over
// after a death comes in seconds.
const clusterTTL = 3 * time.Second

// apiNode is one API node in cluster mode: its core, its webhook manager
// over the shared bucket, the lease that gates its deliveries (on its own
// NATS connection, which the test cuts to play the node's death) and the
// webhooks API.
type apiNode struct {
	name   string
	c      *core.Core
	nc     *nats.Conn
	m      *webhook.Manager
	l      *lease.Lease
	api    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func openAPINode(t *testing.T, nc *natstest.Cluster, name string) *apiNode {
	t.Helper()
	n := &apiNode{name: name, done: make(chan struct{})}
	c, err := core.Open(core.Options{
		URL: filepath.Join(t.TempDir(), name), Registerer: prometheus.NewRegistry(),
		Cluster: &cluster.Options{URLs: nc.URLs(), Name: name, Replicas: 3, ConnectWait: clusterWait, PublishTimeout: 5 * time.Second, ApplyTimeout: clusterWait},
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	n.c = c
	n.nc, err = nats.Connect(nc.URLs(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(n.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	b, err := lease.Open(ctx, js, c.Cluster().Stream(), c.Cluster().Replicas(), clusterTTL)
	if err != nil {
		t.Fatal(err)
	}
	o := webhook.Options{Log: c.Log(), Subscribe: c.Subscribe, Shared: b.State, Registerer: prometheus.NewRegistry()}
	fastOptions(&o)
	if n.m, err = webhook.New(o); err != nil {
		t.Fatal(err)
	}
	if n.l, err = lease.New(lease.Options{KV: b.Lease, Name: name, TTL: clusterTTL}); err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	n.cancel = lcancel
	go func() {
		defer close(n.done)
		n.l.Run(lctx, n.m.Deliver)
	}()
	r := httprouter.New()
	for _, rt := range n.m.Routes() {
		r.Handler(rt.Method, rt.Path, rt.Handler)
	}
	n.api = httptest.NewServer(r)
	t.Cleanup(n.close)
	return n
}

func (n *apiNode) close() {
	if n.c == nil {
		return
	}
	n.api.Close()
	n.cancel()
	<-n.done
	_ = n.m.Close()
	n.nc.Close()
	_ = n.c.Close()
	n.c = nil
}

func (n *apiNode) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, n.api.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

// countingReceiver records the webhook-ids it is sent, in arrival order.
type countingReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids []uint64
}

func newCountingReceiver(t *testing.T) *countingReceiver {
	r := &countingReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		id, err := strconv.ParseUint(strings.TrimPrefix(req.Header.Get("Webhook-Id"), "evt_"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.ids = append(r.ids, id)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *countingReceiver) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.ids...)
}

// waitAll waits until every id of want arrived.
func (r *countingReceiver) waitAll(t *testing.T, want []uint64) []uint64 {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		got := r.got()
		seen := map[uint64]bool{}
		for _, id := range got {
			seen[id] = true
		}
		missing := 0
		for _, id := range want {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events not delivered within %s; got %v", missing, len(want), clusterWait, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstInOrder checks that the first occurrences of the ids come in
// increasing order (what a receiver that de-duplicates on webhook-id
// sees) and returns how many deliveries were repeats.
func firstInOrder(t *testing.T, got []uint64) int {
	t.Helper()
	seen := map[uint64]bool{}
	var last uint64
	dups := 0
	for _, id := range got {
		if seen[id] {
			dups++
			continue
		}
		if id < last {
			t.Fatalf("event %d first delivered after %d: out of order (%v)", id, last, got)
		}
		seen[id], last = true, id
	}
	return dups
}

func appendFaces(t *testing.T, n *apiNode, count int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := 0; i < count; i++ {
		res, err := n.c.Ingest().Append(context.Background(), []ingest.Event{storetest.Face("cam", time.Now().UnixMilli(), fmt.Sprintf("p%d", i))})
		if err != nil {
			t.Fatalf("append on %s: %v", n.name, err)
		}
		ids = append(ids, res.FirstID)
	}
	return ids
}

// TestClusterWebhooks: two API nodes share their webhooks; exactly one
// delivers, each event once and in order while both are up; when the
// holder dies (its lease connection cut) the other takes over within
// 30 s and every event is still delivered, at least once, in order.
func TestClusterWebhooks(t *testing.T) {
	nc, err := natstest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Shutdown)
	a := openAPINode(t, nc, "a")
	b := openAPINode(t, nc, "b")
	rcv := newCountingReceiver(t)

	code, created := a.do(t, http.MethodPost, "/webhooks", `{"url":"`+rcv.srv.URL+`","types":["face_match"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create on a: %d %v", code, created)
	}
	id, _ := created["id"].(string)
	// Listed and readable on the other node, without its secret.
	deadline := time.Now().Add(clusterWait)
	for {
		code, got := b.do(t, http.MethodGet, "/webhooks/"+id, "")
		if code == http.StatusOK {
			if _, ok := got["secret"]; ok {
				t.Fatal("GET answered the secret")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s not on b within %s: %d", id, clusterWait, code)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Both nodes up: one delivers, each event exactly once, in order.
	want := append(appendFaces(t, a, 20), appendFaces(t, b, 20)...)
	got := rcv.waitAll(t, want)
	if a.l.Held() == b.l.Held() {
		t.Fatalf("lease held by a: %v, b: %v; want exactly one", a.l.Held(), b.l.Held())
	}
	if dups := firstInOrder(t, got); dups != 0 {
		t.Fatalf("%d duplicate deliveries while both nodes were up: %v", dups, got)
	}

	// A replay on the node that does not deliver reaches the one that
	// does: the events after want[29] come again, in order.
	holder, other := a, b
	if b.l.Held() {
		holder, other = b, a
	}
	before := len(rcv.got())
	if code, v := other.do(t, http.MethodPost, "/webhooks/"+id+"/replay", fmt.Sprintf(`{"after":%d}`, want[29])); code != http.StatusOK {
		t.Fatalf("replay on %s: %d %v", other.name, code, v)
	}
	deadline = time.Now().Add(clusterWait)
	for len(rcv.got())-before < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("replay delivered %d of 10 within %s", len(rcv.got())-before, clusterWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if again := rcv.got()[before:]; again[0] != want[30] {
		t.Fatalf("replay started at %d, want %d", again[0], want[30])
	}

	// The holder dies: its lease connection is cut, so it neither renews
	// nor releases. The other takes over within 30 s and delivers what
	// is appended meanwhile and what the dead one left.
	holder.nc.Close()
	killed := time.Now()
	more := appendFaces(t, other, 30)
	for !other.l.Held() {
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("%s did not take over within 30 s", other.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("take-over after %s", time.Since(killed).Round(time.Millisecond))
	got = rcv.waitAll(t, append(want, more...))
	firstInOrder(t, got[before:])

	// The survivor's cursor is shared: after the take-over it moves past
	// the newest event, as seen from the survivor's API.
	deadline = time.Now().Add(clusterWait)
	for {
		_, v := other.do(t, http.MethodGet, "/webhooks/"+id, "")
		if c, _ := v["cursor"].(float64); uint64(c) >= more[len(more)-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor on %s: %v, want %d", other.name, v["cursor"], more[len(more)-1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
