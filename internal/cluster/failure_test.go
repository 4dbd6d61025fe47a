package cluster_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/cluster"
)

// Four writers post keyed batches to two API nodes while the server that
// leads the stream is killed. Refused requests are retried with their
// Idempotency-Key until acknowledged. Afterwards both nodes hold exactly
// the acknowledged events, each once, at the ids they were acknowledged
// with, byte for byte the same, and both stores verify.
func TestServerFailureUnderLoad(t *testing.T) {
	nc := startNATS(t)
	short := func(o *cluster.Options) { o.PublishTimeout = 2 * time.Second }
	nodes := []*api{openAPI(t, nc, "a", short), openAPI(t, nc, "b", short)}
	const writers, requests = 4, 40
	sizes := []int{1, 7, 50, 3, 1, 120}
	type acked struct {
		name  string
		count int
		ans   ingestAnswer
	}
	var (
		mu      sync.Mutex
		acks    []acked
		total   atomic.Int64
		retries atomic.Int64
		wg      sync.WaitGroup
	)
	ts := time.Now().UnixMilli()
	deadline := time.Now().Add(4 * waitFor)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < requests; r++ {
				name := fmt.Sprintf("w%d-r%d", w, r)
				n := sizes[(w+r)%len(sizes)]
				body := faces(name, n, ts)
				for attempt := 0; ; attempt++ {
					// Alternate nodes on retries too: the repeat may land
					// on the node that did not take the first attempt.
					a := nodes[(w+attempt)%2]
					code, resp, err := a.post(body, name)
					if err == nil && code == 200 {
						var ans ingestAnswer
						if err := json.Unmarshal(resp, &ans); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acks = append(acks, acked{name, n, ans})
						mu.Unlock()
						total.Add(int64(n))
						break
					}
					if err == nil && code != 503 {
						t.Errorf("%s: %d %s", name, code, resp)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: still refused at the deadline: %d %s %v", name, code, resp, err)
						return
					}
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	// Kill the stream leader's server once the load is under way.
	killed := -1
	for time.Now().Before(deadline) && total.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	if killed = nc.StreamLeader(cluster.DefaultStream); killed < 0 {
		t.Fatal("no stream leader")
	}
	nc.Kill(killed)
	t.Logf("killed server %d after %d events", killed+1, total.Load())
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d events in %d requests acknowledged, %d retries", total.Load(), len(acks), retries.Load())
	if err := nc.Restart(killed); err != nil {
		t.Fatal(err)
	}

	// Every acknowledged event, once, at its id.
	want := map[uint64]string{}
	var maxID uint64
	for _, a := range acks {
		if a.ans.Count != a.count || a.ans.LastID-a.ans.FirstID+1 != uint64(a.count) {
			t.Fatalf("%s: %d events answered %+v", a.name, a.count, a.ans)
		}
		for j := 0; j < a.count; j++ {
			id := a.ans.FirstID + uint64(j)
			if prev, ok := want[id]; ok {
				t.Fatalf("id %d acknowledged twice: %s and %s-%d", id, prev, a.name, j)
			}
			want[id] = fmt.Sprintf("%s-%d", a.name, j)
		}
		maxID = max(maxID, a.ans.LastID)
	}
	for _, a := range nodes {
		a.waitApplied(maxID)
	}
	var dumps [2][]string
	for i, a := range nodes {
		it, err := a.c.Log().NewLogIter(0, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			id := eventlog.KeyID(it.Key())
			_, _, _, js, err := eventlog.SplitValue(it.Value())
			if err != nil {
				t.Fatal(err)
			}
			name, ok := want[id]
			if !ok || !strings.Contains(string(js), `"person_name":"`+name+`"`) {
				t.Fatalf("node %s id %d: %s, acknowledged as %q", a.name, id, js, name)
			}
			dumps[i] = append(dumps[i], string(it.Value()))
			n++
		}
		it.Close()
		if n != len(want) {
			t.Fatalf("node %s holds %d events, %d were acknowledged", a.name, n, len(want))
		}
		a.verify()
	}
	if !slices.Equal(dumps[0], dumps[1]) {
		t.Fatal("the nodes' records differ")
	}
}
