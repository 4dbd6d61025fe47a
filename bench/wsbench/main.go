// Command wsbench measures the WebSocket fan-out (package wsfanout) on
// loopback, with the server and the clients in separate processes so that
// per-connection server memory is measurable: the command re-executes
// itself as the server (-role=server) and drives it from the parent.
//
//	wsbench fanout -conns 10000 -rate 10 -duration 30s
//	    connects idle clients (server RSS and Go heap+stack before/after →
//	    memory per idle connection), then appends -rate events/s for
//	    -duration and reports delivery latency (append call → client
//	    receive, from a nanosecond stamp embedded in each event's payload;
//	    it includes the group commit's fsync) p50/p90/p99/max and
//	    deliveries/s.
//	wsbench replay -events 1000000 [-dir DIR]
//	    fills a store with -events events (or reuses DIR), then one client
//	    replays it from after=0; reports events/s.
//
// With -json (either mode) the results are also printed as one JSON object
// on stdout, and the text report goes to stderr (bench/cmd/benchall reads
// it).
//
// Raise the descriptor limit for large runs: the client process holds one
// socket per connection, the server one more each.
//
//	ulimit -n 20000; go build -o /tmp/wsbench ./bench/wsbench && /tmp/wsbench fanout -conns 10000
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/securevision/events/bench"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // /debug/pprof on the server role (-cpuprofile)
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/wstest"
	"github.com/securevision/events/wsfanout"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: wsbench fanout|replay|server [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "fanout":
		err = fanout(os.Args[2:])
	case "replay":
		err = replay(os.Args[2:])
	case "server":
		err = server(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// ---- server role ----

// server runs the core (core.Open: log, projections, ingest) with a hub
// on its commit bus, and a control API:
// /stream, /stats[?gc=1], /start?rate=R, /stop, /prefill?n=N.
func server(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	dir := fs.String("dir", "", "store directory")
	maxClients := fs.Int("max-clients", 20000, "hub MaxClients")
	_ = fs.Parse(args)

	c, err := core.Open(core.Options{URL: *dir})
	if err != nil {
		return err
	}
	defer c.Close()
	l, ing := c.Log(), c.Ingest()
	h, err := wsfanout.New(wsfanout.Options{Log: l, Enabled: true, MaxClients: *maxClients,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	c.Subscribe(h.Publish)

	var (
		mu     sync.Mutex
		cancel context.CancelFunc
		done   chan struct{}
	)
	mux := http.NewServeMux()
	mux.Handle("/stream", h)
	mux.Handle("/debug/pprof/", http.DefaultServeMux)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
			debug.FreeOSMemory()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(w).Encode(stats{
			RSSKiB: rssKiB(), HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse,
			Goroutines: runtime.NumGoroutine(), Clients: h.Clients(), LastID: l.LastID(), CPU: cpuSeconds(),
		})
	})
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		rate, _ := strconv.ParseFloat(r.URL.Query().Get("rate"), 64)
		if rate <= 0 {
			http.Error(w, "rate", 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan struct{})
		go appendAtRate(ctx, ing, rate, done)
	})
	mux.HandleFunc("/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
		fmt.Fprint(w, l.LastID())
	})
	mux.HandleFunc("/prefill", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		start := time.Now()
		for have := int(l.LastID()); have < n; {
			k := min(10000, n-have)
			if _, err := ing.Append(r.Context(), events(k, 0)); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			have += k
		}
		fmt.Fprintf(w, "%d %s", l.LastID(), time.Since(start))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	srv := &http.Server{Handler: mux}
	go func() {
		// The parent closes our stdin when it is done.
		_, _ = io.Copy(io.Discard, os.Stdin)
		ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = h.Shutdown(ctx)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

type stats struct {
	RSSKiB     int64   `json:"rss_kib"`
	HeapInuse  uint64  `json:"heap_inuse"`
	StackInuse uint64  `json:"stack_inuse"`
	Goroutines int     `json:"goroutines"`
	Clients    int     `json:"clients"`
	LastID     uint64  `json:"last_id"`
	CPU        float64 `json:"cpu_seconds"`
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// events makes n face events; tNs > 0 is embedded as payload.t_ns.
func events(n int, tNs int64) []ingest.Event {
	evs := make([]ingest.Event, n)
	for i := range evs {
		evs[i] = ingest.Event{Type: ingest.TypeFace, Source: fmt.Sprintf("camera_%02d", i%20),
			Face: &ingest.Face{PersonName: "Jane Smith", Similarity: 0.93, BBox: ingest.BBox{120, 160, 270, 320}}}
		if tNs > 0 {
			evs[i].Extra = map[string]json.RawMessage{"t_ns": json.RawMessage(strconv.FormatInt(tNs, 10))}
		}
	}
	return evs
}

func appendAtRate(ctx context.Context, ing *ingest.Service, rate float64, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := ing.Append(ctx, events(1, time.Now().UnixNano())); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "append:", err)
			}
		}
	}
}

// ---- parent side ----

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startServer(dir string, maxClients int) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "server", "-dir", dir, "-max-clients", strconv.Itoa(maxClients))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("server did not start: %q %v", line, err)
	}
	return &child{cmd: cmd, stdin: stdin, addr: strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))}, nil
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) get(path string) (string, error) {
	resp, err := http.Get("http://" + c.addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s %s", path, resp.Status, b)
	}
	return string(b), err
}

func (c *child) stats(gc bool) (stats, error) {
	q := "/stats"
	if gc {
		q += "?gc=1"
	}
	s, err := c.get(q)
	if err != nil {
		return stats{}, err
	}
	var st stats
	return st, json.Unmarshal([]byte(s), &st)
}

// receiver is one client connection recording latencies (its own read
// goroutine is the only writer of lat until the run ends).
type receiver struct {
	conn   *wstest.Conn
	lat    []int64 // ns
	n      atomic.Int64
	lastID atomic.Uint64
	bad    atomic.Int64 // out-of-order ids
	closed chan struct{}
}

// onMessage is called by the connection's read loop (which answers pings).
func (r *receiver) onMessage(b []byte) {
	now := time.Now().UnixNano()
	id := scanInt(b, `{"id":`)
	if id > 0 {
		if prev := r.lastID.Load(); prev != 0 && uint64(id) != prev+1 {
			r.bad.Add(1)
		}
		r.lastID.Store(uint64(id))
	}
	if t := scanInt(b, `"t_ns":`); t > 0 {
		r.lat = append(r.lat, now-t)
	}
	r.n.Add(1)
}

// scanInt returns the integer following key in b, 0 if absent.
func scanInt(b []byte, key string) int64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	var n int64
	for _, ch := range b[i+len(key):] {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}

func connect(addr, query string, n, parallel int) ([]*receiver, error) {
	rs := make([]*receiver, n)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	sem := make(chan struct{}, parallel)
	for i := range rs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := &receiver{closed: make(chan struct{})}
			var conn *wstest.Conn
			var err error
			for try := 0; try < 5; try++ {
				conn, _, err = wstest.Dial("ws://"+addr+"/stream?"+query, wstest.Options{BufferSize: 4096})
				if err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				mu.Lock()
				ferr = err
				mu.Unlock()
				return
			}
			r.conn = conn
			rs[i] = r
			go func() {
				_ = conn.ReadLoop(r.onMessage)
				conn.Close()
				close(r.closed)
			}()
		}()
	}
	wg.Wait()
	return rs, ferr
}

func fanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	conns := fs.Int("conns", 1000, "client connections")
	rate := fs.Float64("rate", 10, "events per second appended")
	dur := fs.Duration("duration", 30*time.Second, "measurement time")
	parallel := fs.Int("dial-parallel", 64, "concurrent handshakes")
	cpuProfile := fs.String("cpuprofile", "", "write the server's CPU profile of the run here")
	jsonOut := fs.Bool("json", false, "print one JSON object with the results on stdout (the text goes to stderr)")
	_ = fs.Parse(args)
	text := io.Writer(os.Stdout)
	if *jsonOut {
		text = os.Stderr
	}

	dir, err := os.MkdirTemp("", "wsbench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := startServer(dir, *conns+100)
	if err != nil {
		return err
	}
	defer c.stop()

	// Warm-up: a few connections so that lazily initialized state is not
	// charged to the measured ones.
	warm, err := connect(c.addr, "", 10, 10)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	s0, err := c.stats(true)
	if err != nil {
		return err
	}
	start := time.Now()
	rs, err := connect(c.addr, "", *conns, *parallel)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	connectTime := time.Since(start)
	for c2 := 0; ; c2++ {
		st, err := c.stats(false)
		if err != nil {
			return err
		}
		if st.Clients >= *conns+len(warm) || c2 > 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	s1, err := c.stats(true)
	if err != nil {
		return err
	}
	per := func(a, b int64) float64 { return float64(b-a) / float64(*conns) }
	fmt.Fprintf(text, "connections: %d (connected in %s, %d clients on the server)\n", *conns, connectTime.Round(time.Millisecond), s1.Clients)
	fmt.Fprintf(text, "server RSS: %d KiB idle → %d KiB with clients: %.1f KiB per connection\n", s0.RSSKiB, s1.RSSKiB, per(s0.RSSKiB, s1.RSSKiB))
	fmt.Fprintf(text, "server Go heap+stack: %.1f KiB per connection (heap %.1f, stacks %.1f); goroutines %d → %d\n",
		per(int64(s0.HeapInuse+s0.StackInuse), int64(s1.HeapInuse+s1.StackInuse))/1024,
		per(int64(s0.HeapInuse), int64(s1.HeapInuse))/1024, per(int64(s0.StackInuse), int64(s1.StackInuse))/1024,
		s0.Goroutines, s1.Goroutines)

	first := s1.LastID
	s1, _ = c.stats(false)
	cpu0 := cpuSeconds()
	if _, err := c.get(fmt.Sprintf("/start?rate=%g", *rate)); err != nil {
		return err
	}
	if *cpuProfile != "" {
		p, err := c.get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(dur.Seconds())-1)))
		if err != nil {
			return err
		}
		if err := os.WriteFile(*cpuProfile, []byte(p), 0o644); err != nil {
			return err
		}
	} else {
		time.Sleep(*dur)
	}
	lastS, err := c.get("/stop")
	if err != nil {
		return err
	}
	last, _ := strconv.ParseUint(lastS, 10, 64)
	appended := last - first
	// Let stragglers arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		behind := 0
		for _, r := range rs {
			if r.lastID.Load() < last {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s2, _ := c.stats(false)
	cpu1 := cpuSeconds()
	var all []int64
	var got, bad int64
	missing := 0
	for _, r := range rs {
		all = append(all, r.lat...)
		got += r.n.Load()
		bad += r.bad.Load()
		if r.lastID.Load() < last {
			missing++
		}
	}
	want := int64(appended) * int64(*conns)
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return time.Duration(all[min(len(all)-1, int(p*float64(len(all))))])
	}
	fmt.Fprintf(text, "events: %d appended at %g/s over %s; deliveries %d of %d (%.0f/s); out of order %d; clients missing the last event %d\n",
		appended, *rate, *dur, got, want, float64(got)/dur.Seconds(), bad, missing)
	fmt.Fprintf(text, "latency append→receive: p50 %s p90 %s p99 %s p99.9 %s max %s\n",
		q(.5).Round(10*time.Microsecond), q(.9).Round(10*time.Microsecond), q(.99).Round(10*time.Microsecond),
		q(.999).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond))
	fmt.Fprintf(text, "CPU per delivery: server %.2f µs, clients %.2f µs (server %.2f s, clients %.2f s of CPU for the run)\n",
		(s2.CPU-s1.CPU)/float64(got)*1e6, (cpu1-cpu0)/float64(got)*1e6, s2.CPU-s1.CPU, cpu1-cpu0)
	fmt.Fprintf(text, "server RSS after the run: %d KiB; goroutines %d\n", s2.RSSKiB, s2.Goroutines)
	for _, r := range append(rs, warm...) {
		_ = r.conn.SendClose(1000, "")
	}
	if *jsonOut {
		return json.NewEncoder(os.Stdout).Encode(bench.WSFanoutResult{
			Conns: *conns, ConnectSeconds: connectTime.Seconds(), ServerClients: s1.Clients,
			RSSIdleKiB: s0.RSSKiB, RSSClientsKiB: s1.RSSKiB, RSSPerConnKiB: per(s0.RSSKiB, s1.RSSKiB),
			HeapStackPerConnKiB: per(int64(s0.HeapInuse+s0.StackInuse), int64(s1.HeapInuse+s1.StackInuse)) / 1024,
			HeapPerConnKiB:      per(int64(s0.HeapInuse), int64(s1.HeapInuse)) / 1024,
			StackPerConnKiB:     per(int64(s0.StackInuse), int64(s1.StackInuse)) / 1024,
			GoroutinesIdle:      s0.Goroutines, GoroutinesClients: s1.Goroutines,
			Rate: *rate, DurationSeconds: dur.Seconds(), Appended: appended,
			Deliveries: got, Expected: want, DeliveriesPerSec: float64(got) / dur.Seconds(),
			OutOfOrder: bad, ClientsMissingLast: missing, LatencySamples: len(all),
			P50ns: int64(q(.5)), P90ns: int64(q(.9)), P99ns: int64(q(.99)), P999ns: int64(q(.999)), MaxNs: int64(q(1)),
			ServerCPUSeconds: s2.CPU - s1.CPU, ClientCPUSeconds: cpu1 - cpu0,
			RSSAfterKiB: s2.RSSKiB, GoroutinesAfter: s2.Goroutines,
		})
	}
	return nil
}

func replay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	n := fs.Int("events", 1000000, "events in the store")
	dir := fs.String("dir", "", "store directory to (re)use; default: a temporary one")
	jsonOut := fs.Bool("json", false, "print one JSON object with the results on stdout (the text goes to stderr)")
	_ = fs.Parse(args)
	text := io.Writer(os.Stdout)
	if *jsonOut {
		text = os.Stderr
	}
	d := *dir
	if d == "" {
		tmp, err := os.MkdirTemp("", "wsbench-replay-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		d = tmp
	}
	c, err := startServer(d, 100)
	if err != nil {
		return err
	}
	defer c.stop()
	p, err := c.get("/prefill?n=" + strconv.Itoa(*n))
	if err != nil {
		return err
	}
	fmt.Fprintf(text, "store: %s (last id, fill time)\n", p)
	st, err := c.stats(false)
	if err != nil {
		return err
	}
	last := st.LastID
	res := bench.WSReplayResult{Events: *n, LastID: last, Prefill: p}
	for round := 0; round < 3; round++ {
		start := time.Now()
		rs, err := connect(c.addr, "after=0", 1, 1)
		if err != nil {
			return err
		}
		r := rs[0]
		for r.lastID.Load() < last {
			select {
			case <-r.closed:
				return fmt.Errorf("stream closed after %d events", r.n.Load())
			case <-time.After(time.Millisecond):
			}
		}
		el := time.Since(start)
		fmt.Fprintf(text, "replay %d: %d events in %s: %.0f events/s (out of order: %d)\n",
			round+1, r.n.Load(), el.Round(time.Millisecond), float64(r.n.Load())/el.Seconds(), r.bad.Load())
		res.Rounds = append(res.Rounds, bench.WSReplayRound{Events: r.n.Load(), Seconds: el.Seconds(),
			EventsPerSec: float64(r.n.Load()) / el.Seconds(), OutOfOrder: r.bad.Load()})
		_ = r.conn.SendClose(1000, "")
	}
	if *jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	return nil
}
