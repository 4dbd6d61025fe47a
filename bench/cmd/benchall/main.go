// Command benchall runs the whole-system benchmarks of SecureVision Events
// and writes BENCHMARKS.md:
//
//	go run ./bench/cmd/benchall -out BENCHMARKS.md                 # full run (10M-event store)
//	go run ./bench/cmd/benchall -events 1000000 -duration 5s -out /tmp/B.md   # quicker
//
// Sections are a list (see sections): each is a function that fills a
// bench.Section. -include picks them by id. The WebSocket section (ws)
// drives bench/wsbench; the vision section needs OpenCV 4 (gocv) and is
// skipped without it.
//
// The server under load is the real securevision binary in its own process
// (go build ./cmd/securevision), so the load generator (wrk) and the server
// do not share a Go runtime; -server inproc serves from this process
// instead.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/internal/testbin"
)

type config struct {
	out       string
	events    int
	dataDir   string
	duration  time.Duration
	rounds    int
	conns     int
	benchtime string
	count     int
	include   []string
	server    string
	load      string
	moduleDir string
	workDir   string
	keep      bool
	// wsMaxConns caps the WebSocket fan-out connections (hidden
	// -ws-max-conns, for smoke runs); 0 keeps the 10k target run.
	wsMaxConns int
}

// section is one part of the report. run fills s; an error it returns is
// reported in the section (the others still run).
type section struct {
	id, title string
	// byDefault sections run without -include.
	byDefault bool
	run       func(e *env, s *bench.Section) error
}

func sections() []section {
	return []section{
		{"append", "a. Log append (eventlog Go benchmarks)", true, runAppend},
		{"ingest", "b. HTTP ingest", true, runIngest},
		{"query", "c. Query load", true, runQuery},
		{"allocs", "d. Allocations per request (in-process Go benchmarks)", true, runAllocs},
		{"restart", "e. Restart time", true, runRestart},
		{"ws", "f. WebSocket fan-out", true, runWS},
		{"vision", "g. Vision pipeline", true, runVision},
		{"hostile", "h. Hostile request bodies", true, runHostile},
		{"mqtt", "i. MQTT: log to Mosquitto, and the ingest cost", true, runMQTT},
		{"webhooks", "j. Webhooks", true, runWebhooks},
		{"platesearch", "k. Plate search", true, runPlatesearch},
		{"ui", "l. Dashboard", true, runUI},
		{"corrections", "m. Reads of corrected events", true, runCorrections},
		{"cluster", "n. Cluster mode (NATS JetStream, R3 on one machine)", true, runCluster},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	var c config
	var include string
	fs := flag.NewFlagSet("benchall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.out, "out", "BENCHMARKS.md", "report path")
	fs.IntVar(&c.events, "events", 10_000_000, "events in the query/restart store")
	fs.StringVar(&c.dataDir, "data", "", "query store directory (default data/bench-<events> under the module, e.g. data/bench-10m; reused when it holds enough events)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "duration of each HTTP load run")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of the query load runs and of the batch ingest runs (each round runs every one once; medians are reported)")
	fs.IntVar(&c.conns, "conns", 32, "connections of the query load runs")
	fs.StringVar(&c.benchtime, "benchtime", "3s", "-benchtime of the eventlog benchmarks")
	fs.IntVar(&c.count, "count", 3, "-count of the eventlog benchmarks (the median is reported)")
	fs.StringVar(&include, "include", "", "comma-separated section ids to run (default: every section); 'all' for every one")
	fs.StringVar(&c.server, "server", "binary", "binary: the real securevision binary in its own process; inproc: the same wiring in this process")
	fs.StringVar(&c.load, "load", "auto", "load generator: auto (wrk if installed), wrk or go")
	fs.StringVar(&c.workDir, "work", "", "scratch directory for fresh stores, scripts and logs (default a new one under data/)")
	fs.BoolVar(&c.keep, "keep", false, "keep the scratch directory")
	fs.IntVar(&c.wsMaxConns, "ws-max-conns", 0, "")
	hideFlags(fs, stderr, "ws-max-conns")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	all := sections()
	switch include {
	case "":
		for _, s := range all {
			if s.byDefault {
				c.include = append(c.include, s.id)
			}
		}
	case "all":
		for _, s := range all {
			c.include = append(c.include, s.id)
		}
	default:
		for _, id := range strings.Split(include, ",") {
			id = strings.TrimSpace(id)
			if !slices.ContainsFunc(all, func(s section) bool { return s.id == id }) {
				fmt.Fprintf(stderr, "benchall: unknown section %q\n", id)
				return 2
			}
			c.include = append(c.include, id)
		}
	}
	if c.server != "binary" && c.server != "inproc" || c.load != "auto" && c.load != "wrk" && c.load != "go" ||
		c.events < 1000 || c.conns < 1 || c.duration < time.Second || c.count < 1 || c.rounds < 1 || c.wsMaxConns < 0 {
		fmt.Fprintln(stderr, "benchall: bad flags (see -h)")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mod, err := testbin.ModuleRoot()
	if err != nil {
		fmt.Fprintf(stderr, "benchall: %v (run benchall inside the module: go run ./bench/cmd/benchall)\n", err)
		return 1
	}
	c.moduleDir = mod
	if c.dataDir == "" {
		c.dataDir = filepath.Join(mod, "data", "bench-"+humanCount(c.events))
	}
	if c.workDir == "" {
		if err := os.MkdirAll(filepath.Join(mod, "data"), 0o750); err != nil {
			fmt.Fprintf(stderr, "benchall: %v\n", err)
			return 1
		}
		// Under data/ (not /tmp, which may be tmpfs): fresh stores must
		// fsync to the same disk as the real one.
		if c.workDir, err = os.MkdirTemp(filepath.Join(mod, "data"), "bench-work-"); err != nil {
			fmt.Fprintf(stderr, "benchall: %v\n", err)
			return 1
		}
		if !c.keep {
			defer os.RemoveAll(c.workDir)
		}
	}
	outAbs, _ := filepath.Abs(c.out)
	relOut, _ := filepath.Rel(mod, outAbs)

	e := &env{cfg: c, ctx: ctx, progress: stderr}
	e.runner = bench.NewRunner(map[string]string{"auto": "", "wrk": "wrk", "go": "go"}[c.load], c.workDir)
	if c.load == "wrk" && e.runner.Name() != "wrk" {
		fmt.Fprintln(stderr, "benchall: -load wrk: wrk is not installed (apt-get install wrk, or make deps)")
		return 1
	}
	rep := &bench.Report{
		Machine: bench.DescribeMachine(ctx, mod, relOut),
		Command: "go run ./bench/cmd/benchall " + strings.Join(args, " "),
	}
	rep.Preamble = append(rep.Preamble, fmt.Sprintf(
		"Setup: server = %s; HTTP load = %s; query/restart store = %d events in `%s`; each HTTP run %s. "+
			"This is a shared, noisy machine: absolute numbers move between runs, so the targets that compare "+
			"(log vs raw Pebble, filtered vs unfiltered) use ratios measured in the same run.",
		serverMode(c.server), e.runner.Name(), c.events, relPath(mod, c.dataDir), c.duration))
	if p50, p90, err := bench.MeasureFsync(c.workDir, 50); err == nil {
		rep.Preamble = append(rep.Preamble, fmt.Sprintf("Disk: appending 4 KiB to a scratch file and fsyncing it took %s (median of 50 at the start of the run; p90 %s). "+
			"Every acknowledged append waits for an fsync; section a compares with raw Pebble synced commits of the same run instead.",
			bench.FormatDuration(p50), bench.FormatDuration(p90)))
	}
	defer e.cleanup()

	// The soak section is produced by reliability/cmd/soak, not by
	// benchall, and pasted at the end of the report: keep it.
	keptTail := soakTail(c.out)
	for _, s := range all {
		if !slices.Contains(c.include, s.id) {
			continue
		}
		sec := &bench.Section{ID: s.id, Title: s.title}
		fmt.Fprintf(stderr, "== %s\n", s.title)
		start := time.Now()
		if err := s.run(e, sec); err != nil {
			sec.Err = err
			fmt.Fprintf(stderr, "benchall: %s: %v\n", s.id, err)
		}
		if sec.Skipped == "" {
			sec.Took = time.Since(start)
		}
		rep.Sections = append(rep.Sections, sec)
		// Written after every section: an interrupted run keeps what it
		// measured.
		if err := os.WriteFile(c.out, append(rep.Markdown(), keptTail...), 0o644); err != nil {
			fmt.Fprintf(stderr, "benchall: %v\n", err)
			return 1
		}
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "benchall: interrupted")
			return 1
		}
	}
	fmt.Fprintf(stderr, "benchall: wrote %s\n", c.out)
	for _, s := range rep.Sections {
		if s.Err != nil {
			return 1
		}
	}
	return 0
}

// hideFlags makes fs's usage leave out the named flags (smoke-run knobs
// that a report run should not use).
func hideFlags(fs *flag.FlagSet, w io.Writer, hidden ...string) {
	fs.Usage = func() {
		vis := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		vis.SetOutput(w)
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(hidden, f.Name) {
				vis.Var(f.Value, f.Name, f.Usage)
				vis.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
		vis.PrintDefaults()
	}
}

func serverMode(m string) string {
	if m == "inproc" {
		return "in-process (httpd.New + http.Server in the benchall process)"
	}
	return "the real `securevision serve` binary in its own process"
}

func humanCount(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dm", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func relPath(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// soakHeading starts the part of the report that benchall does not write.
const soakHeading = "\n## Soak (not produced by benchall)"

// soakTail returns the soak section of the report at path (from its
// heading to the end), or nil.
func soakTail(path string) []byte {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if i := bytes.Index(old, []byte(soakHeading)); i >= 0 {
		return old[i:]
	}
	return nil
}
