package cluster_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/natstest"
	"github.com/securevision/events/internal/storetest"
)

// With two of three servers down the stream has no quorum: a write
// answers 503 with a detail that says so, within the publish timeout,
// while reads go on from the local views; once a server is back, writes
// resume by themselves, and a keyed retry stores its batch once.
func TestNoQuorumAnswers503(t *testing.T) {
	nc := startNATS(t)
	const timeout = 2 * time.Second
	a := openAPI(t, nc, "a", func(o *cluster.Options) { o.PublishTimeout = timeout })
	ts := time.Now().UnixMilli()
	if code, body, err := a.post(faces("before", 5, ts), ""); err != nil || code != 200 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	leader := nc.StreamLeader(cluster.DefaultStream)
	down := []int{leader, (leader + 1) % 3}
	for _, i := range down {
		nc.Kill(i)
	}
	start := time.Now()
	code, body, err := a.post(faces("during", 3, ts), "key-during")
	took := time.Since(start)
	if err != nil || code != 503 || !strings.Contains(string(body), "Cluster unavailable") || !strings.Contains(string(body), "Idempotency-Key") {
		t.Fatalf("write without quorum: %d %s %v", code, body, err)
	}
	// Bounded: the publish timeout plus the time to answer, far from a
	// hang (the HTTP client's own timeout is much longer).
	if took > timeout+waitFor/2 {
		t.Fatalf("503 after %s", took)
	}
	if code, body := a.get("/events?limit=10"); code != 200 || strings.Count(string(body), `"id":`) != 5 {
		t.Fatalf("read without quorum: %d %s", code, body)
	}
	if code, body := a.get("/health"); code != 200 || !strings.Contains(string(body), `"cluster":{`) {
		t.Fatalf("health without quorum: %d %s", code, body)
	}
	for _, i := range down {
		if err := nc.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(waitFor)
	var ans ingestAnswer
	for {
		code, body, err := a.post(faces("during", 3, ts), "key-during")
		if err == nil && code == 200 {
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %d %s %v", code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.waitApplied(ans.LastID)
	if code, body := a.get("/events?limit=100"); code != 200 || strings.Count(string(body), `"person_name":"during-0"`) != 1 {
		t.Fatalf("the retried batch is not stored exactly once: %s", body)
	}
	a.verify()
}

// In cluster mode a request above the atomic batch limit is 413 and says
// what the limit is; at the limit it is stored.
func TestBatchLimit(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	ts := time.Now().UnixMilli()
	code, body, err := a.post(faces("big", cluster.MaxBatch+1, ts), "")
	if err != nil || code != 413 || !strings.Contains(string(body), "in cluster mode the limit is 1000") {
		t.Fatalf("1001 events: %d %s %v", code, body, err)
	}
	code, body, err = a.post(faces("max", cluster.MaxBatch, ts), "")
	if err != nil || code != 200 || !strings.Contains(string(body), `"count":1000`) {
		t.Fatalf("1000 events: %d %s %v", code, body, err)
	}
}

// The same keyed request sent to two nodes is stored once and both
// answer the same; another body under the key is 422 on either node.
func TestIdempotencyAcrossNodes(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	b := openAPI(t, nc, "b")
	ts := time.Now().UnixMilli()
	body := faces("k", 4, ts)
	c1, r1, err := a.post(body, "k1")
	if err != nil || c1 != 200 {
		t.Fatalf("first: %d %s %v", c1, r1, err)
	}
	// b may not have applied it yet: JetStream's duplicate window
	// catches the repeat, and b answers from the record once it has.
	c2, r2, err := b.post(body, "k1")
	if err != nil || c2 != 200 || string(r2) != string(r1) {
		t.Fatalf("repeat on b: %d %s, first %s %v", c2, r2, r1, err)
	}
	for _, n := range []*api{a, b} {
		code, resp, err := n.post(faces("other", 4, ts), "k1")
		if err != nil || code != 422 {
			t.Fatalf("other body on %s: %d %s %v", n.name, code, resp, err)
		}
	}
	if code, events := b.get("/events?limit=100"); code != 200 || strings.Count(string(events), `"id":`) != 4 {
		t.Fatalf("stored more than once: %s", events)
	}
	// A single event goes as a plain publish: the same rules.
	one := faces("one", 1, ts)
	c1, r1, _ = b.post(one, "k2")
	c2, r2, _ = a.post(one, "k2")
	if c1 != 200 || c2 != 200 || string(r1) != string(r2) {
		t.Fatalf("single event: %d %s / %d %s", c1, r1, c2, r2)
	}
}

// Start-up refuses bad settings with one line each: unreachable servers
// after the bounded wait, replicas out of range, a missing credentials
// file, and a store that is not a view of this stream.
func TestStartupErrors(t *testing.T) {
	open := func(dir string, o cluster.Options) error {
		c, err := core.Open(core.Options{URL: dir, Registerer: prometheus.NewRegistry(), Cluster: &o})
		if err == nil {
			c.Close()
		}
		return err
	}
	dir := t.TempDir()
	cases := []struct {
		o    cluster.Options
		want string
	}{
		{cluster.Options{URLs: "nats://127.0.0.1:1", ConnectWait: 300 * time.Millisecond}, "no NATS server reachable at nats://127.0.0.1:1 within 300ms"},
		{cluster.Options{URLs: "nats://127.0.0.1:1", Replicas: 6}, "replicas 6 out of range: 1 to 5"},
		{cluster.Options{URLs: "nats://127.0.0.1:1", CredsFile: filepath.Join(dir, "missing.creds")}, "credentials file"},
		{cluster.Options{URLs: "nats://127.0.0.1:1", Stream: "a.b"}, "stream name"},
	}
	for _, c := range cases {
		err := open(filepath.Join(dir, "s"), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want one line with %q", c.o, err, c.want)
		}
	}

	// A store written in single-node mode is not a view of the stream.
	nc := startNATS(t)
	single := filepath.Join(dir, "single")
	s, err := core.Open(core.Options{URL: single})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest().Append(bg, []ingest.Event{storetest.Face("cam", time.Now().UnixMilli(), "x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	err = open(single, cluster.Options{URLs: nc.URLs(), ConnectWait: waitFor})
	if err == nil || !strings.Contains(err.Error(), "holds 1 events written in single-node mode") {
		t.Fatalf("single-node store: %v", err)
	}
	n := openNode(t, nc, "a")
	n.close()
	// The same store against a stream created anew is refused.
	other, err := natstest.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown()
	err = open(n.dir, cluster.Options{URLs: other.URLs(), Replicas: 1, ConnectWait: waitFor})
	if err == nil || !strings.Contains(err.Error(), "is a view of stream SECUREVISION_EVENTS created") {
		t.Fatalf("store of another stream: %v", err)
	}
}
