package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/internal/natstest"
	"github.com/securevision/events/internal/wstest"
)

// Targets of the cluster section.
const (
	targetClusterBatch   = 25_000  // events/s, 1000-event requests, 4 connections, R3
	targetCatchUp        = 100_000 // events/s a new node applies from the stream
	targetWritesResume   = 10 * time.Second
	targetFollowerWithin = 0.10 // query and /stream on a follower within 10% of Pebble mode
)

// clusterEnv is SECUREVISION__CLUSTER__ settings for a node of stream.
func clusterEnv(urls, stream string) []string {
	return []string{"SECUREVISION__CLUSTER__NATS_URL=" + urls, "SECUREVISION__CLUSTER__STREAM=" + stream, "SECUREVISION__CLUSTER__REPLICAS=3"}
}

// clusterHealth is the part of /health the section reads in cluster mode.
type clusterHealth struct {
	Log struct {
		LastID uint64 `json:"last_id"`
	} `json:"log"`
	Cluster *struct {
		LastID    uint64 `json:"last_id"`
		AppliedID uint64 `json:"applied_id"`
	} `json:"cluster"`
}

// runCluster: cluster mode on a 3-server JetStream cluster in this
// process (R3 on loopback) with the API nodes as real server processes.
func runCluster(e *env, s *bench.Section) error {
	if bin, _ := e.serverBinary(); bin == "" {
		s.Skipped = "cluster mode needs the server binary (-server binary, and a build that succeeds): the in-process server has no cluster wiring"
		return nil
	}
	natsDir := filepath.Join(e.cfg.workDir, "nats")
	nc, err := natstest.Start(natsDir, 3)
	if err != nil {
		return err
	}
	defer nc.Shutdown()
	s.Commands = append(s.Commands, "natstest.Start(<work>/nats, 3)  # inside benchall: go build github.com/nats-io/nats-server/v2 (v2.15.2, go.mod), 3 processes, JetStream, on loopback")
	s.Text = append(s.Text, "Three nats-server processes form a JetStream cluster on loopback, the stream is R3 with file storage, "+
		"and the API nodes are real server processes: every event is replicated to three file stores and applied to each node's own Pebble store, "+
		"all on this one machine. A real deployment spreads the servers over machines (more CPU and disks, network latency between them).")
	gen := bench.NewGenerator(23, nil)
	now := time.Now().UnixMilli()
	streams := 0
	newStream := func() string { streams++; return fmt.Sprintf("BENCH_%d", streams) }

	// ingestRun loads one server (cluster or Pebble mode) with POST /ingest.
	type ingestOut struct {
		evs  float64
		res  bench.LoadResult
		last uint64
	}
	ingest := func(srv *bench.Server, perReq, conns int) (ingestOut, error) {
		reqs := make([]bench.Request, 8)
		for i := range reqs {
			reqs[i] = bench.Request{Method: http.MethodPost, Path: "/ingest", Body: gen.Body(perReq, now+int64(i*perReq)), ContentType: "application/json"}
		}
		res, err := e.runner.Run(e.ctx, bench.LoadSpec{Name: fmt.Sprintf("cluster-ingest-%d", perReq), BaseURL: srv.URL, Requests: reqs,
			Conns: conns, Threads: min(2, conns), Duration: e.cfg.duration})
		if err != nil {
			return ingestOut{}, err
		}
		if !contains(s.Commands, res.Command) {
			s.Commands = append(s.Commands, res.Command)
		}
		var h clusterHealth
		if err := srv.GetJSON(e.ctx, "/health", &h); err != nil {
			return ingestOut{}, err
		}
		return ingestOut{evs: float64(res.Requests-res.Non2xx-res.Errors) * float64(perReq) / res.Duration.Seconds(), res: res, last: h.Log.LastID}, nil
	}

	// 1. Batched ingest, R3 against Pebble mode, alternating rounds.
	var clusterRuns, pebbleRuns []ingestOut
	var keep struct {
		stream, store string
		srv           *bench.Server
		last          uint64
	}
	for round := range e.cfg.rounds {
		stream := newStream()
		dir, err := e.freshStore("cluster-a")
		if err != nil {
			return err
		}
		srv, err := e.startServer(dir, s, clusterEnv(nc.URLs(), stream)...)
		if err != nil {
			return err
		}
		e.logf("cluster: batch ingest R3, round %d", round+1)
		o, err := ingest(srv, 1000, 4)
		if err != nil {
			e.stopServer(srv)
			return err
		}
		clusterRuns = append(clusterRuns, o)
		if round == 0 {
			// Keep the first round's node and stream for the catch-up,
			// failover and follower runs.
			keep.stream, keep.store, keep.srv, keep.last = stream, dir, srv, o.last
		} else if err := e.stopServer(srv); err != nil {
			return err
		}
		pdir, err := e.freshStore("cluster-pebble")
		if err != nil {
			return err
		}
		psrv, err := e.startServer(pdir, s)
		if err != nil {
			return err
		}
		e.logf("cluster: batch ingest Pebble mode, round %d", round+1)
		po, err := ingest(psrv, 1000, 4)
		serr := e.stopServer(psrv)
		os.RemoveAll(pdir)
		if err := errors.Join(err, serr); err != nil {
			return err
		}
		pebbleRuns = append(pebbleRuns, po)
	}
	defer func() {
		if keep.srv != nil {
			e.stopServer(keep.srv)
		}
	}()
	cm := medianBy(clusterRuns, func(o ingestOut) float64 { return o.evs })
	pm := medianBy(pebbleRuns, func(o ingestOut) float64 { return o.evs })
	ratio := medianRatio(clusterRuns, pebbleRuns, func(o ingestOut) float64 { return o.evs })
	t := bench.Table{Header: []string{"run", "connections", "events/request", "events/s (acked)", "events/s of each round", "p50", "p99", "errors + non-2xx"}}
	each := func(runs []ingestOut) string {
		var out []string
		for _, o := range runs {
			out = append(out, bench.FormatRate(o.evs))
		}
		return joinComma(out)
	}
	t.Rows = append(t.Rows,
		[]string{"cluster mode, R3", "4", "1000", bench.FormatRate(cm.evs), each(clusterRuns), bench.FormatDuration(cm.res.P50), bench.FormatDuration(cm.res.P99), strconv.FormatInt(cm.res.Non2xx+cm.res.Errors, 10)},
		[]string{"Pebble mode (same run)", "4", "1000", bench.FormatRate(pm.evs), each(pebbleRuns), bench.FormatDuration(pm.res.P50), bench.FormatDuration(pm.res.P99), strconv.FormatInt(pm.res.Non2xx+pm.res.Errors, 10)})
	s.Check("POST /ingest in cluster mode, 1000 events/request, 4 connections, R3", "≥ "+bench.FormatRate(targetClusterBatch)+" events/s",
		fmt.Sprintf("%s events/s (median of %d runs; %.0f%% of Pebble mode in the same rounds)%s", bench.FormatRate(cm.evs), len(clusterRuns), 100*ratio, errSuffix(cm.res)),
		cm.evs >= targetClusterBatch && clean(cm.res))

	// 2. Single-event ingest at 64 connections.
	e.logf("cluster: single-event ingest, 64 connections")
	single, err := ingest(keep.srv, 1, 64)
	if err != nil {
		return err
	}
	keep.last = single.last
	t.Rows = append(t.Rows, []string{"cluster mode, R3, single events", "64", "1", bench.FormatRate(single.evs), "", bench.FormatDuration(single.res.P50), bench.FormatDuration(single.res.P99), strconv.FormatInt(single.res.Non2xx+single.res.Errors, 10)})
	s.Tables = append(s.Tables, t)

	// 3. Catch-up of a new node with an empty store.
	bdir, err := e.freshStore("cluster-b")
	if err != nil {
		return err
	}
	start := time.Now()
	follower, err := e.startServer(bdir, s, clusterEnv(nc.URLs(), keep.stream)...)
	if err != nil {
		return err
	}
	defer e.stopServer(follower)
	caughtUp, err := waitApplied(e.ctx, follower, keep.last, 10*time.Minute)
	if err != nil {
		return err
	}
	took := caughtUp.Sub(start)
	rate := float64(keep.last) / took.Seconds()
	s.Check("catch-up of a new node from the stream", "≥ "+bench.FormatRate(targetCatchUp)+" events/s",
		fmt.Sprintf("%s events/s (%d events in %s, process start included)", bench.FormatRate(rate), keep.last, bench.FormatDuration(took)), rate >= targetCatchUp)

	// 4. Query and /stream replay on the follower, against a Pebble-mode
	// store holding the same events (a copy of the follower's store
	// served without cluster mode would be refused: it is a view).
	if err := followerReads(e, s, follower, keep.last); err != nil {
		return err
	}

	// 5. Writes after the stream leader's server is killed.
	resume, refused, err := writesResume(e, nc, keep.srv, keep.stream)
	if err != nil {
		return err
	}
	s.Check("writes resume after the stream leader's server is killed", "≤ "+targetWritesResume.String(),
		fmt.Sprintf("%s (first acknowledged request sent after the kill; %d requests answered 503 meanwhile)", bench.FormatDuration(resume), refused),
		resume <= targetWritesResume)
	s.Notes = append(s.Notes,
		"Catch-up: a new API node with an empty store is started on the stream of the first batch round (plus the single-event run); the time runs from starting its process to /health showing applied_id at the stream's last id.",
		"Writes resume: a client starts a keyed single-event request every 20 ms on a node of the stream (concurrently: a request sent while the stream has no leader waits up to the server's 8 s publish timeout); the stream leader's server is killed with SIGKILL; the figure is the time from the kill to the first 2xx of a request sent after it.",
		"The ratio to Pebble mode is the median of the same-round ratios: replication to three file stores on one machine plus the follower's apply is what cluster mode costs here.")
	return nil
}

// waitApplied polls a cluster node's /health until applied_id reaches
// last.
func waitApplied(ctx context.Context, srv *bench.Server, last uint64, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		var h clusterHealth
		if err := srv.GetJSON(ctx, "/health", &h); err == nil && h.Cluster != nil && h.Cluster.AppliedID >= last {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("node not caught up to %d within %s", last, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// followerReads compares GET /events and a /stream replay on the
// follower with a Pebble-mode server holding the same events.
func followerReads(e *env, s *bench.Section, follower *bench.Server, last uint64) error {
	// The Pebble-mode twin: the follower's events re-ingested in pages of
	// 1000 (same bodies, same ids where no marker intervened).
	pdir, err := e.freshStore("cluster-twin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(pdir)
	twin, err := e.startServer(pdir, s)
	if err != nil {
		return err
	}
	defer e.stopServer(twin)
	e.logf("cluster: copying %d events to a Pebble-mode twin", last)
	if err := copyEvents(e.ctx, follower.URL, twin.URL, last); err != nil {
		return err
	}
	t := bench.Table{Header: []string{"run", "request", "Pebble mode req/s", "follower req/s", "follower / Pebble"}}
	queries := []string{"/events?limit=100", "/events?limit=100&type=plate_read", "/events?after=1000&limit=100&order=asc"}
	worst := 1.0
	for _, q := range queries {
		var rps [2][]float64
		for range e.cfg.rounds {
			for i, srv := range []*bench.Server{twin, follower} {
				res, err := e.runner.Run(e.ctx, bench.LoadSpec{Name: "cluster-query", BaseURL: srv.URL, Requests: []bench.Request{{Path: q}},
					Conns: e.cfg.conns, Duration: e.cfg.duration})
				if err != nil {
					return err
				}
				rps[i] = append(rps[i], res.RPS)
			}
		}
		p, f := median(rps[0]), median(rps[1])
		worst = min(worst, f/p)
		t.Rows = append(t.Rows, []string{"query", "`" + q + "`", bench.FormatRate(p), bench.FormatRate(f), fmt.Sprintf("%.2f", f/p)})
	}
	var wsRate [2][]float64
	for range e.cfg.rounds {
		for i, srv := range []*bench.Server{twin, follower} {
			r, err := replayRate(srv.URL, last)
			if err != nil {
				return err
			}
			wsRate[i] = append(wsRate[i], r)
		}
	}
	p, f := median(wsRate[0]), median(wsRate[1])
	worst = min(worst, f/p)
	t.Rows = append(t.Rows, []string{"/stream replay", "`/stream?after=0` until the last event, events/s", bench.FormatRate(p), bench.FormatRate(f), fmt.Sprintf("%.2f", f/p)})
	s.Tables = append(s.Tables, t)
	s.Check("query and /stream replay on a follower", fmt.Sprintf("within %.0f%% of Pebble mode", 100*targetFollowerWithin),
		fmt.Sprintf("worst ratio %.2f (medians of %d rounds)", worst, e.cfg.rounds), worst >= 1-targetFollowerWithin)
	return nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// copyEvents re-ingests every event of from into to, in id order, as
// they were sent (without id and created_at).
func copyEvents(ctx context.Context, from, to string, last uint64) error {
	after := uint64(0)
	for after < last {
		r, err := http.Get(fmt.Sprintf("%s/events?after=%d&limit=1000&order=asc", from, after))
		if err != nil {
			return err
		}
		var evs []map[string]json.RawMessage
		err = json.NewDecoder(r.Body).Decode(&evs)
		r.Body.Close()
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		var id uint64
		if err := json.Unmarshal(evs[len(evs)-1]["id"], &id); err != nil {
			return err
		}
		after = id
		for _, ev := range evs {
			delete(ev, "id")
			delete(ev, "created_at")
		}
		body, _ := json.Marshal(evs)
		resp, err := http.Post(to+"/ingest", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("copy to the twin: POST /ingest %d", resp.StatusCode)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// replayRate reads /stream?after=0 until an event with id >= last and
// returns the events per second.
func replayRate(base string, last uint64) (float64, error) {
	c, _, err := wstest.Dial(base+"/stream?after=0", wstest.Options{})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	n := 0
	var ev struct {
		ID uint64 `json:"id"`
	}
	for {
		msg, err := c.ReadMessage(time.Minute)
		if err != nil {
			return 0, fmt.Errorf("replay after %d events: %w", n, err)
		}
		n++
		if err := json.Unmarshal(msg, &ev); err == nil && ev.ID >= last {
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}

// writesResume kills the stream leader's server while a client writes to
// srv and returns the time until a request sent after the kill is
// acknowledged, and how many requests were refused.
func writesResume(e *env, nc *natstest.Cluster, srv *bench.Server, stream string) (time.Duration, int, error) {
	leader := nc.StreamLeader(stream)
	if leader < 0 {
		return 0, 0, errors.New("no stream leader")
	}
	gen := bench.NewGenerator(31, nil)
	client := &http.Client{Timeout: time.Minute}
	var (
		mu      sync.Mutex
		killed  time.Time
		resumed time.Duration
		refused int
		wg      sync.WaitGroup
	)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	go func() {
		time.Sleep(time.Second)
		nc.Kill(leader) // SIGKILL, and waits until the process is gone
		mu.Lock()
		killed = time.Now()
		mu.Unlock()
	}()
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			wg.Wait()
			return 0, 0, e.ctx.Err()
		}
		mu.Lock()
		done := resumed > 0
		k := killed
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		body := gen.Body(1, time.Now().UnixMilli())
		sent := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ingest", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("resume-%d", i))
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == 200
			if resp != nil {
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				refused++
				return
			}
			if !k.IsZero() && sent.After(k) && resumed == 0 {
				resumed = time.Since(k)
			}
		}()
	}
	wg.Wait()
	if err := nc.Restart(leader); err != nil {
		return 0, 0, err
	}
	if resumed == 0 {
		return 0, refused, errors.New("writes did not resume within a minute of the kill")
	}
	return resumed, refused, nil
}
