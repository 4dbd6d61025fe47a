package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/internal/natstest"
	"github.com/securevision/events/internal/testbin"
)

// clusterWait bounds every wait of the cluster check.
const clusterWait = 90 * time.Second

// TestClusterNodeKill runs two real server processes in cluster mode over
// a 3-server JetStream cluster (nats-server processes). While writers post keyed
// batches to both, one node is killed with SIGKILL and started again on
// its store: it catches up, its /stream replays every event from
// after=0 in order, and afterwards both stores hold the same events,
// byte for byte (securevision export), and pass securevision verify.
func TestClusterNodeKill(t *testing.T) {
	bin := binary(t)
	nc, err := natstest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Shutdown()
	env := []string{"SECUREVISION__CLUSTER__NATS_URL=" + nc.URLs(), "SECUREVISION__CLUSTER__REPLICAS=3"}
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	var mu sync.Mutex
	nodes := make([]*testbin.Server, 2)
	for i := range nodes {
		if nodes[i], err = StartServer(bin, dirs[i], env...); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	node := func(i int) *testbin.Server { mu.Lock(); defer mu.Unlock(); return nodes[i] }

	client := &http.Client{Timeout: clusterWait}
	const writers, batches, per = 2, 30, 50
	var acked atomic.Int64
	var maxID atomic.Uint64
	var wg sync.WaitGroup
	ts := time.Now().UnixMilli()
	deadline := time.Now().Add(3 * clusterWait)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				var body bytes.Buffer
				body.WriteByte('[')
				for j := 0; j < per; j++ {
					if j > 0 {
						body.WriteByte(',')
					}
					body.Write(EventJSON(j, fmt.Sprintf("cam-%d", w), fmt.Sprintf("w%d-b%d-%d", w, b, j), ts))
				}
				body.WriteByte(']')
				key := fmt.Sprintf("w%d-b%d", w, b)
				for attempt := 0; ; attempt++ {
					n := node((w + b + attempt) % 2)
					req, _ := http.NewRequest(http.MethodPost, n.URL+"/ingest", bytes.NewReader(body.Bytes()))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					resp, err := client.Do(req)
					if err == nil && resp.StatusCode == 200 {
						var res IngestResult
						err = json.NewDecoder(resp.Body).Decode(&res)
						resp.Body.Close()
						if err != nil || res.Count != per {
							t.Errorf("%s: %+v %v", key, res, err)
							return
						}
						acked.Add(per)
						for {
							cur := maxID.Load()
							if res.LastID <= cur || maxID.CompareAndSwap(cur, res.LastID) {
								break
							}
						}
						break
					}
					if resp != nil {
						resp.Body.Close()
						if resp.StatusCode != 503 {
							t.Errorf("%s: status %d", key, resp.StatusCode)
							return
						}
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: not acknowledged by the deadline: %v", key, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// SIGKILL node b mid-run, then start it again on its store.
	for acked.Load() < writers*batches*per/3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	node(1).Kill()
	t.Logf("node b killed after %d acknowledged events", acked.Load())
	restarted, err := StartServer(bin, dirs[1], env...)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	nodes[1] = restarted
	mu.Unlock()
	wg.Wait()
	if t.Failed() {
		return
	}
	last := maxID.Load()
	if got := acked.Load(); got != writers*batches*per {
		t.Fatalf("%d events acknowledged", got)
	}
	for _, n := range nodes {
		waitClusterApplied(t, n.URL, last)
	}
	msgs, _, err := WSReplay(nodes[1].URL, "after=0", last, clusterWait, clusterWait, nil)
	if err != nil {
		t.Fatal(err)
	}
	var prev uint64
	for _, m := range msgs {
		var ev struct {
			ID uint64 `json:"id"`
		}
		if err := json.Unmarshal(m, &ev); err != nil || ev.ID <= prev {
			t.Fatalf("replay on the restarted node: %s after id %d", m, prev)
		}
		prev = ev.ID
	}
	if len(msgs) != writers*batches*per {
		t.Fatalf("replay on the restarted node: %d events, want %d", len(msgs), writers*batches*per)
	}
	var exports [2][][]byte
	for i, n := range nodes {
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := Verify(bin, dirs[i]); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if exports[i], err = Export(bin, dirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(exports[0]) != writers*batches*per || len(exports[0]) != len(exports[1]) {
		t.Fatalf("exports hold %d and %d events, want %d", len(exports[0]), len(exports[1]), writers*batches*per)
	}
	for i := range exports[0] {
		if !bytes.Equal(exports[0][i], exports[1][i]) {
			t.Fatalf("event %d differs:\n%s\n%s", i, exports[0][i], exports[1][i])
		}
	}
}

// waitClusterApplied polls /health until the node applied through last.
func waitClusterApplied(t *testing.T, base string, last uint64) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		var h struct {
			Cluster struct {
				AppliedID uint64 `json:"applied_id"`
			} `json:"cluster"`
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Cluster.AppliedID >= last {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s applied %d, want %d", base, h.Cluster.AppliedID, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
