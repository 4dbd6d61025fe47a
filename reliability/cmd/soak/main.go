// Command soak runs mixed load against the real securevision binary (built
// and started with package reliability's harness; charts drawn with
// gonum/plot) and checks that nothing grows, fails or gets lost:
//
//   - ingest at -eps events/s (batches of 50; 1% of events are 2 days old so
//     that retention, every minute, has work),
//   - queries at -qps requests/s (/events pages with filters, /events/{id},
//     /health),
//   - -ws WebSocket clients, each following one source (-slow of them read
//     slowly; a client closed as too slow resumes with after=N), plus 4
//     that follow every event.
//
// Every 10 s it records RSS, the Go heap live at the last GC (liveHeapMB),
// goroutines (go_goroutines), open fds
// (process_open_fds) and p99 latencies; at the end it writes soak.csv,
// soak.png (RSS and p99 over time) and soak.md under -out, prints the
// markdown, and exits 1 unless: no growth trend (least-squares slope over
// the second half of the run, projected over the whole run, within 15% of
// the mean + slack), no errors, every acknowledged current event is in the
// store, and every WebSocket client received every stored event of its
// source between its first and last id, in order, once.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/securevision/events/internal/wstest"
	"github.com/securevision/events/reliability"
)

type sample struct {
	T          float64
	RSSMB      float64
	HeapMB     float64 // Go heap live at the last GC (liveHeapMB; Pebble's block cache is outside it)
	Goroutines float64
	FDs        float64
	IngestP99  float64 // ms
	QueryP99   float64 // ms
	EPS, QPS   float64
	WSMsgs     float64 // per second
	Errors     int64
}

type latencies struct {
	mu sync.Mutex
	d  []float64
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, float64(d)/1e6)
	l.mu.Unlock()
}

func (l *latencies) take() []float64 {
	l.mu.Lock()
	d := l.d
	l.d = nil
	l.mu.Unlock()
	return d
}

func p99(d []float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Float64s(d)
	return d[int(math.Ceil(0.99*float64(len(d))))-1]
}

var (
	duration = flag.Duration("duration", 10*time.Minute, "soak duration")
	out      = flag.String("out", "reliability/out/soak", "output directory")
	eps      = flag.Int("eps", 5000, "events ingested per second")
	qps      = flag.Int("qps", 2000, "query requests per second")
	nws      = flag.Int("ws", 1000, "WebSocket clients following one source each")
	slowPct  = flag.Int("slow", 10, "percent of WebSocket clients that read slowly")
	sources  = flag.Int("sources", 200, "frame sources")
	interval = flag.Duration("sample", 10*time.Second, "sampling interval")
	cacheMB  = flag.Int("cache-mb", 256, "SECUREVISION__EVENTS__CACHE_MB of the server (Pebble block cache)")
	extraEnv = flag.String("env", "", "extra server environment, KEY=VALUE;KEY=VALUE (e.g. SECUREVISION__EVENTS__CACHE_MB=8)")
)

func main() {
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	work, err := os.MkdirTemp("", "soak-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	bin, err := reliability.BuildBinary(work)
	if err != nil {
		fatal(err)
	}
	dir := filepath.Join(work, "events")
	env := []string{
		"SECUREVISION__EVENTS__RETENTION_DAYS=1",
		"SECUREVISION__EVENTS__CLEANUP_INTERVAL=1m",
		fmt.Sprintf("SECUREVISION__API__WS_MAX_CLIENTS=%d", *nws+100),
		fmt.Sprintf("SECUREVISION__EVENTS__CACHE_MB=%d", *cacheMB),
	}
	if *extraEnv != "" {
		env = append(env, strings.Split(*extraEnv, ";")...)
	}
	srv, err := reliability.StartServer(bin, dir, env...)
	if err != nil {
		fatal(err)
	}
	defer func() {
		if !srv.Exited() {
			srv.Kill()
		}
	}()
	fmt.Printf("soak: %s against pid %d (%s): %d events/s, %d queries/s, %d+4 ws clients (%d%% slow)\n",
		*duration, srv.PID(), srv.URL, *eps, *qps, *nws, *slowPct)

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var (
		errs       atomic.Int64
		errSamples sync.Map
		ingestLat  latencies
		queryLat   latencies
		events     atomic.Int64
		queries    atomic.Int64
		wsMsgs     atomic.Int64
		lastID     atomic.Uint64
		ackMu      sync.Mutex
		acked      []uint64 // ids of acknowledged current (not old) events
		oldAcked   atomic.Int64
	)
	fail := func(what string, err any) {
		if errs.Add(1) <= 20 {
			errSamples.Store(fmt.Sprintf("%s: %v", what, err), true)
		}
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var wg sync.WaitGroup

	// WebSocket clients connect first: they follow live from their start.
	var wsClients []*wsClient
	for i := 0; i < *nws+4; i++ {
		c := &wsClient{base: srv.URL, slow: i < *nws && i%100 < *slowPct, msgs: &wsMsgs}
		if i < *nws {
			c.source = fmt.Sprintf("cam-%d", i%*sources)
		}
		wsClients = append(wsClients, c)
		if err := c.connect(0, false); err != nil {
			fatal(fmt.Errorf("ws client %d: %w", i, err))
		}
	}

	// Ingest: batches of 50, 1% of them two days old.
	const batch = 50
	writers := 4
	perWriter := float64(*eps) / batch / float64(writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / perWriter))
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var body bytes.Buffer
				now := time.Now().UnixMilli()
				old := make([]bool, batch)
				for i := 0; i < batch; i++ {
					ts := now
					if (n*batch+i)%100 == 37 {
						ts, old[i] = now-2*24*3600*1000, true
					}
					body.Write(reliability.EventJSON(i, fmt.Sprintf("cam-%d", (w*batch+i+n)%*sources), fmt.Sprintf("s%d-%d-%d", w, n, i), ts))
					body.WriteByte('\n')
				}
				start := time.Now()
				code, res, raw, err := reliability.Ingest(context.Background(), client, srv.URL, "", body.Bytes(), true)
				ingestLat.add(time.Since(start))
				if err != nil || code != 200 {
					fail("ingest", fmt.Sprintf("%d %s %v", code, raw, err))
					continue
				}
				events.Add(batch)
				ackMu.Lock()
				for i := 0; i < batch; i++ {
					if old[i] {
						oldAcked.Add(1)
					} else {
						acked = append(acked, res.FirstID+uint64(i))
					}
				}
				ackMu.Unlock()
				for {
					l := lastID.Load()
					if res.LastID <= l || lastID.CompareAndSwap(l, res.LastID) {
						break
					}
				}
			}
		}(w)
	}

	// Queries.
	qworkers := 16
	perQ := float64(*qps) / float64(qworkers)
	for q := 0; q < qworkers; q++ {
		wg.Add(1)
		go func(q int) {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / perQ))
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var path string
				switch n % 6 {
				case 0:
					path = "/events?limit=100"
				case 1:
					path = fmt.Sprintf("/events?source=cam-%d&limit=50", n%*sources)
				case 2:
					path = fmt.Sprintf("/events?type=face_match&since=%d&limit=20", time.Now().Add(-time.Minute).UnixMilli())
				case 3:
					path = fmt.Sprintf("/events?after=%d&limit=100", max(int64(lastID.Load())-500, 0))
				case 4:
					path = fmt.Sprintf("/events/%d", max(lastID.Load(), 1))
				default:
					path = "/health"
				}
				start := time.Now()
				r, err := client.Get(srv.URL + path)
				if err != nil {
					fail("query", err)
					continue
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				queryLat.add(time.Since(start))
				queries.Add(1)
				if r.StatusCode != 200 && !(r.StatusCode == 404 && strings.HasPrefix(path, "/events/")) {
					fail("query "+path, r.StatusCode)
				}
			}
		}(q)
	}

	// Sampling.
	var samples []sample
	begin := time.Now()
	tick := time.NewTicker(*interval)
	var prevE, prevQ, prevW int64
	prevT := begin
sampling:
	for {
		select {
		case <-ctx.Done():
			break sampling
		case now := <-tick.C:
			m, err := scrape(client, srv.URL)
			if err != nil {
				fail("metrics", err)
			}
			dt := now.Sub(prevT).Seconds()
			e, q, w := events.Load(), queries.Load(), wsMsgs.Load()
			s := sample{
				T:     now.Sub(begin).Seconds(),
				RSSMB: rssMB(srv.PID()), HeapMB: liveHeapMB(m), Goroutines: m["go_goroutines"], FDs: m["process_open_fds"],
				IngestP99: p99(ingestLat.take()), QueryP99: p99(queryLat.take()),
				EPS: float64(e-prevE) / dt, QPS: float64(q-prevQ) / dt, WSMsgs: float64(w-prevW) / dt,
				Errors: errs.Load(),
			}
			prevE, prevQ, prevW, prevT = e, q, w, now
			samples = append(samples, s)
			fmt.Printf("t=%4.0fs rss=%6.1fMB heap=%6.1fMB goroutines=%5.0f fds=%5.0f ingest_p99=%6.1fms query_p99=%6.1fms eps=%6.0f qps=%6.0f ws_msgs/s=%7.0f errors=%d\n",
				s.T, s.RSSMB, s.HeapMB, s.Goroutines, s.FDs, s.IngestP99, s.QueryP99, s.EPS, s.QPS, s.WSMsgs, s.Errors)
		}
	}
	tick.Stop()
	wg.Wait()

	// Let the streams catch up with the last appended id, then close them.
	final := lastID.Load()
	deadline := time.Now().Add(60 * time.Second)
	var cw sync.WaitGroup
	for _, c := range wsClients {
		cw.Add(1)
		go func() { defer cw.Done(); c.waitFor(final, deadline) }()
	}
	cw.Wait()
	wsErrors := 0
	for _, c := range wsClients {
		c.close()
		if e := c.err(); e != "" {
			wsErrors++
			fail("ws", e)
		}
	}
	if err := srv.Stop(); err != nil {
		fail("server stop", err)
	}
	if err := reliability.Verify(bin, dir); err != nil {
		fail("verify", err)
	}

	// Nothing lost: acknowledged current events and stream deliveries
	// against the store.
	stored, err := reliability.Export(bin, dir)
	if err != nil {
		fatal(err)
	}
	type ev struct {
		id  uint64
		src string
	}
	all := make([]ev, 0, len(stored))
	present := map[uint64]bool{}
	oldLeft := 0
	cut := time.Now().Add(-24 * time.Hour).UnixMilli()
	for _, l := range stored {
		var s reliability.Stored
		if err := json.Unmarshal(l, &s); err != nil {
			fatal(err)
		}
		all = append(all, ev{s.ID, s.FrameSourceID})
		present[s.ID] = true
		if s.TsMs < cut {
			oldLeft++
		}
	}
	lost := 0
	for _, id := range acked {
		if !present[id] {
			lost++
		}
	}
	if lost > 0 {
		fail("lost", fmt.Sprintf("%d acknowledged events missing from the store", lost))
	}
	bySource := map[string][]uint64{}
	allIDs := make([]uint64, 0, len(all))
	for _, e := range all {
		bySource[e.src] = append(bySource[e.src], e.id)
		allIDs = append(allIDs, e.id)
	}
	wsGaps, wsDelivered := 0, 0
	for _, c := range wsClients {
		ids := c.received()
		wsDelivered += len(ids)
		if len(ids) == 0 {
			continue
		}
		got := map[uint64]bool{}
		for i, id := range ids {
			if i > 0 && id <= ids[i-1] {
				wsGaps++
				fail("ws order", fmt.Sprintf("client %s: id %d after %d", c.source, id, ids[i-1]))
				break
			}
			got[id] = true
		}
		// The stored ids this client had to receive: its source's (or
		// all) between its first and last id.
		want := allIDs
		if c.source != "" {
			want = bySource[c.source]
		}
		lo := sort.Search(len(want), func(i int) bool { return want[i] >= ids[0] })
		for _, id := range want[lo:] {
			if id > ids[len(ids)-1] {
				break
			}
			if !got[id] {
				wsGaps++
				if wsGaps <= 5 {
					fail("ws missing", fmt.Sprintf("client source=%q missed id %d", c.source, id))
				}
			}
		}
	}

	verdicts := []string{}
	ok := errs.Load() == 0
	half := samples
	if len(samples) >= 4 {
		half = samples[len(samples)/2:]
	}
	// RSS legitimately grows while Pebble's block cache (off the Go heap,
	// -cache-mb) and its two 64 MiB memtables fill, which takes longer
	// than a 10-minute soak at 5k events/s. So RSS passes when it shows no
	// trend, or when it stays within that configured bound plus 256 MiB
	// while the Go heap shows no trend.
	maxRSS := 0.0
	for _, x := range samples {
		maxRSS = math.Max(maxRSS, x.RSSMB)
	}
	bound := float64(*cacheMB) + 128 + 256
	heapOK := true
	for _, tr := range []struct {
		name  string
		get   func(sample) float64
		slack float64
	}{
		{"Go heap MB (live at last GC)", func(s sample) float64 { return s.HeapMB }, 16},
		{"RSS MB", func(s sample) float64 { return s.RSSMB }, 32},
		{"goroutines", func(s sample) float64 { return s.Goroutines }, 50},
		{"open fds", func(s sample) float64 { return s.FDs }, 20},
	} {
		slope, mean := fit(half, tr.get)
		growth := slope * duration.Seconds()
		pass := growth <= 0.15*mean+tr.slack
		verdict := passFail(pass)
		switch tr.name {
		case "Go heap MB (live at last GC)":
			heapOK = pass
		case "RSS MB":
			if !pass && heapOK && maxRSS <= bound {
				pass = true
				verdict = fmt.Sprintf("PASS (trend, but max %.0f MB <= block cache %d + memtables 128 + 256 MiB, and no Go heap trend)", maxRSS, *cacheMB)
			}
		}
		ok = ok && pass
		verdicts = append(verdicts, fmt.Sprintf("| %s | %.1f | %+.3f/min | %+.1f | %s |", tr.name, mean, slope*60, growth, verdict))
	}
	writeCSV(filepath.Join(*out, "soak.csv"), samples)
	if err := writeCharts(filepath.Join(*out, "soak.png"), samples); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
	}
	var md strings.Builder
	fmt.Fprintf(&md, "### Soak: %s, %s\n\n", duration.String(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&md, "Load: %d events/s offered (batches of 50, 1%% two days old; retention 1 day, cleanup every minute), %d queries/s offered, %d WebSocket clients on one source each (%d%% slow readers) + 4 on every event. Machine: %d-core, shared with the load generator. Extra server env: %q.\n\n", *eps, *qps, *nws, *slowPct, numCPU(), *extraEnv)
	fmt.Fprintf(&md, "Achieved: %d events acknowledged (%.0f/s), %d queries (%.0f/s), %d stream messages delivered.\n\n",
		events.Load(), float64(events.Load())/duration.Seconds(), queries.Load(), float64(queries.Load())/duration.Seconds(), wsDelivered)
	fmt.Fprintf(&md, "| metric | mean (2nd half) | fitted slope | projected growth over run | verdict |\n|---|---|---|---|---|\n%s\n\n", strings.Join(verdicts, "\n"))
	ip, qp := worst(samples)
	fmt.Fprintf(&md, "p99 latency (worst 10 s window): ingest %.1f ms, queries %.1f ms. Errors: %d. Acknowledged current events missing from the store: %d. Old events acknowledged %d, left after retention %d. Stream clients with gaps or disorder: %d (%d stream errors).\n\n",
		ip, qp, errs.Load(), lost, oldAcked.Load(), oldLeft, wsGaps, wsErrors)
	fmt.Fprintf(&md, "Samples: `soak.csv`; plot: `soak.png` (RSS and p99 over time).\n\nResult: **%s**\n", passFail(ok))
	errSamples.Range(func(k, _ any) bool { fmt.Fprintf(&md, "\n- error: %v", k); return true })
	_ = os.WriteFile(filepath.Join(*out, "soak.md"), []byte(md.String()), 0o644)
	fmt.Println()
	fmt.Println(md.String())
	if !ok {
		os.Exit(1)
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func worst(s []sample) (float64, float64) {
	var a, b float64
	for _, x := range s {
		a, b = math.Max(a, x.IngestP99), math.Max(b, x.QueryP99)
	}
	return a, b
}

// fit is a least-squares line through (T, get); it returns the slope per
// second and the mean.
func fit(s []sample, get func(sample) float64) (slope, mean float64) {
	n := float64(len(s))
	if n < 2 {
		if n == 1 {
			return 0, get(s[0])
		}
		return 0, 0
	}
	var sx, sy, sxx, sxy float64
	for _, x := range s {
		sx += x.T
		sy += get(x)
		sxx += x.T * x.T
		sxy += x.T * get(x)
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	return (n*sxy - sx*sy) / d, sy / n
}

// scrape reads the unlabelled gauges and counters of /metrics by name
// (go_goroutines, process_open_fds, the go_memstats_ and go_gc_ values
// liveHeapMB needs), parsed with Prometheus's own text-format parser as
// bench.Server.Metric does. (Importing bench for it would build its
// in-process server wiring into this driver of the real binary.)
func scrape(c *http.Client, base string) (map[string]float64, error) {
	r, err := c.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", r.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	m := make(map[string]float64, len(mfs))
	for name, mf := range mfs {
		if len(mf.GetMetric()) != 1 || len(mf.GetMetric()[0].GetLabel()) != 0 {
			continue
		}
		switch x := mf.GetMetric()[0]; {
		case x.Gauge != nil:
			m[name] = x.GetGauge().GetValue()
		case x.Counter != nil:
			m[name] = x.GetCounter().GetValue()
		case x.Untyped != nil:
			m[name] = x.GetUntyped().GetValue()
		}
	}
	return m, nil
}

// liveHeapMB is the Go heap the last GC marked live, from the goal the
// runtime set for the next one: live × (1 + GOGC/100). The heap in use
// swings by up to GOGC% between collections, so the few samples of a short
// run (the second half of a 60 s run has three) gave steep slopes of either
// sign, depending on where they fell in that sawtooth; the marked heap
// grows only if live data does,
// which is what a leak looks like. Falls back to the heap in use.
func liveHeapMB(m map[string]float64) float64 {
	goal, okGoal := m["go_memstats_next_gc_bytes"]
	gogc, okGC := m["go_gc_gogc_percent"]
	if !okGoal || !okGC || gogc <= 0 {
		return m["go_memstats_heap_inuse_bytes"] / (1 << 20)
	}
	return goal / (1 + gogc/100) / (1 << 20)
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(strings.Count(string(b), "processor\t:"), 1)
}

func writeCSV(path string, s []sample) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"t_s", "rss_mb", "heap_mb", "goroutines", "open_fds", "ingest_p99_ms", "query_p99_ms", "events_per_s", "queries_per_s", "ws_msgs_per_s", "errors"})
	for _, x := range s {
		_ = w.Write([]string{ff(x.T), ff(x.RSSMB), ff(x.HeapMB), ff(x.Goroutines), ff(x.FDs), ff(x.IngestP99), ff(x.QueryP99), ff(x.EPS), ff(x.QPS), ff(x.WSMsgs), strconv.FormatInt(x.Errors, 10)})
	}
	w.Flush()
}

func ff(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(2)
}

// wsClient follows /stream (one source, or everything), records the ids
// it receives and resumes with after=<last id> when closed as too slow.
type wsClient struct {
	base, source string
	slow         bool
	msgs         *atomic.Int64

	mu      sync.Mutex
	ids     []uint64
	conn    *wstest.Conn
	closing bool
	errMsg  string
	resumes int
}

func (c *wsClient) connect(after uint64, hasAfter bool) error {
	q := "?"
	if c.source != "" {
		q += "source=" + c.source + "&"
	}
	if hasAfter {
		q += "after=" + strconv.FormatUint(after, 10)
	}
	conn, _, err := wstest.Dial(c.base+"/stream"+q, wstest.Options{Timeout: 10 * time.Second, MaxFrame: 1 << 20})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	go func() {
		err := conn.ReadLoop(c.onMessage)
		conn.Close()
		c.onClose(err)
	}()
	return nil
}

func (c *wsClient) onMessage(m []byte) {
	var s struct {
		ID   uint64 `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(m, &s); err != nil || s.ID == 0 {
		c.mu.Lock()
		if c.errMsg == "" {
			c.errMsg = fmt.Sprintf("unexpected message %q", m)
		}
		c.mu.Unlock()
		return
	}
	c.msgs.Add(1)
	c.mu.Lock()
	c.ids = append(c.ids, s.ID)
	c.mu.Unlock()
	if c.slow {
		time.Sleep(20 * time.Millisecond)
	}
}

// onClose runs when the stream has ended: by the server's close frame
// (a *wstest.CloseError) or a read error.
func (c *wsClient) onClose(err error) {
	c.mu.Lock()
	closing := c.closing
	var last uint64
	if n := len(c.ids); n > 0 {
		last = c.ids[n-1]
	}
	c.mu.Unlock()
	if closing {
		return
	}
	var ce *wstest.CloseError
	if errors.As(err, &ce) && ce.Code == 4000 {
		// Too slow: resume where we are, as a real client would.
		c.mu.Lock()
		c.resumes++
		c.mu.Unlock()
		if err := c.connect(last, true); err != nil {
			c.mu.Lock()
			c.errMsg = "resume: " + err.Error()
			c.mu.Unlock()
		}
		return
	}
	c.mu.Lock()
	if c.errMsg == "" {
		c.errMsg = fmt.Sprintf("stream closed: %v", err)
	}
	c.mu.Unlock()
}

// waitFor waits until the client saw id (or, filtered, the store moved on)
// or the deadline passes.
func (c *wsClient) waitFor(id uint64, deadline time.Time) {
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.ids)
		var last uint64
		if n > 0 {
			last = c.ids[n-1]
		}
		c.mu.Unlock()
		// A filtered client cannot know the last matching id: give it a
		// short quiet period instead.
		if last >= id || (c.source != "" && c.quiet(300*time.Millisecond)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *wsClient) quiet(d time.Duration) bool {
	c.mu.Lock()
	n := len(c.ids)
	c.mu.Unlock()
	time.Sleep(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids) == n
}

func (c *wsClient) close() {
	c.mu.Lock()
	c.closing = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.SendClose(1000, "")
		conn.Close()
	}
}

func (c *wsClient) received() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.ids...)
}

func (c *wsClient) err() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errMsg
}
