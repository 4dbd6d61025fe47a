package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/securevision/events/bench"
)

// Targets of section f.
const (
	wsTargetConns    = 10_000
	wsRate           = 10 // events/s appended during the fan-out runs
	wsTargetP99      = 100 * time.Millisecond
	wsTargetConnMem  = 25_000 // bytes of server memory per idle connection (25 KB)
	wsTargetReplay   = 300_000
	wsReplayEvents   = 1_000_000
	wsMinDuration    = 20 * time.Second
	wsDeliveredShare = 0.95 // of conns × rate deliveries/s: the appender kept the offered rate
)

// wsFanout and wsReplay are what wsbench -json prints.
type (
	wsFanout = bench.WSFanoutResult
	wsReplay = bench.WSReplayResult
)

func nsDur(ns int64) string { return bench.FormatDuration(time.Duration(ns)) }

// runWS runs bench/wsbench (server in a child process, clients in wsbench):
// live fan-out at 1000 and 10000 connections, then replay from after=0.
func runWS(e *env, s *bench.Section) error {
	bin := filepath.Join(e.cfg.workDir, "wsbench")
	buildArgs := []string{"go", "build", "-o", relPath(e.cfg.moduleDir, bin), "./bench/wsbench"}
	e.logf("building wsbench: %s", strings.Join(buildArgs, " "))
	build := exec.CommandContext(e.ctx, buildArgs[0], buildArgs[1:]...)
	build.Dir = e.cfg.moduleDir
	s.Commands = append(s.Commands, strings.Join(buildArgs, " "))
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./bench/wsbench: %w\n%s", err, out)
	}
	binRel := relPath(e.cfg.moduleDir, bin)
	if !strings.HasPrefix(binRel, "/") {
		binRel = "./" + binRel
	}

	dur := max(e.cfg.duration, wsMinDuration)
	connsList := []int{1000, wsTargetConns}
	capped := false
	if m := e.cfg.wsMaxConns; m > 0 {
		for i, n := range connsList {
			if n > m {
				connsList[i], capped = m, true
			}
		}
		connsList = slices.Compact(connsList)
	}
	var hard uint64
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		hard = rl.Max
	}

	var errs []error
	var fan []*wsFanout
	cmdOf := map[*wsFanout]string{}
	for _, n := range connsList {
		if e.ctx.Err() != nil {
			break
		}
		// The client process holds one socket per connection; the server
		// child (which inherits the limit) one more each.
		need := uint64(n + 1024)
		if hard != 0 && hard != ^uint64(0) && hard < need {
			errs = append(errs, fmt.Errorf("fanout -conns %d: the descriptor hard limit (RLIMIT_NOFILE %d) is below the %d needed", n, hard, need))
			continue
		}
		// TMPDIR: wsbench's store goes to the scratch directory (same disk
		// as the real store, removed with it even if wsbench is killed).
		line := fmt.Sprintf("ulimit -n %d && TMPDIR=%s %s fanout -conns %d -rate %d -duration %s -json",
			need, relPath(e.cfg.moduleDir, e.cfg.workDir), binRel, n, wsRate, dur)
		e.logf("ws fanout: %d connections, %d events/s, %s", n, wsRate, dur)
		s.Commands = append(s.Commands, line)
		var r wsFanout
		if err := e.runWSBench(line, &r); err != nil {
			errs = append(errs, fmt.Errorf("fanout -conns %d: %w", n, err))
			continue
		}
		fan = append(fan, &r)
		cmdOf[&r] = line
	}

	replayN := min(wsReplayEvents, e.cfg.events)
	var rep *wsReplay
	var repCmd string
	if e.ctx.Err() != nil {
		errs = append(errs, e.ctx.Err())
	} else if dir, err := e.freshStore("ws-replay"); err != nil {
		errs = append(errs, err)
	} else {
		line := fmt.Sprintf("%s replay -events %d -dir %s -json", binRel, replayN, relPath(e.cfg.moduleDir, dir))
		e.logf("ws replay: %d events from after=0", replayN)
		s.Commands = append(s.Commands, line)
		var r wsReplay
		if err := e.runWSBench(line, &r); err != nil {
			errs = append(errs, fmt.Errorf("replay: %w", err))
		} else if len(r.Rounds) == 0 {
			errs = append(errs, errors.New("replay: no rounds in the output"))
		} else {
			rep, repCmd = &r, line
		}
		os.RemoveAll(dir)
	}

	s.Text = append(s.Text, fmt.Sprintf("`bench/wsbench` (package wsfanout with the real eventlog, projections and ingest.Service) runs the server in a child process "+
		"and the WebSocket clients (gws) in its own, on loopback; both share this machine's %d CPUs with benchall. "+
		"Fan-out: idle clients connect to `/stream` (live tail), the server's RSS and Go heap+stack are read after a GC before and after they connect "+
		"(the difference per connection is the idle cost), then the server appends %d events/s (one event per synced append) for %s and every client "+
		"times each event from the append call to its receipt (a nanosecond stamp in the payload; includes the group commit's fsync). "+
		"Deliveries/s is deliveries over the run time (the first tick comes one interval after the start, so a full run delivers slightly under conns × rate). "+
		"The run time is -duration or %s, whichever is longer.", runtime.NumCPU(), wsRate, dur, wsMinDuration))
	if len(fan) > 0 {
		t := bench.Table{Header: []string{"connections", "events appended", "deliveries (of expected)", "deliveries/s", "p50", "p90", "p99", "p99.9", "max",
			"clients missing the last event", "out of order", "CPU µs/delivery (server + clients)", "command"}}
		m := bench.Table{Header: []string{"connections", "connect time", "server RSS idle → with clients", "RSS per connection", "Go heap + stack per connection (heap, stacks)"}}
		for _, r := range fan {
			cpu := "—"
			if r.Deliveries > 0 {
				cpu = fmt.Sprintf("%.1f + %.1f", r.ServerCPUSeconds/float64(r.Deliveries)*1e6, r.ClientCPUSeconds/float64(r.Deliveries)*1e6)
			}
			t.Rows = append(t.Rows, []string{strconv.Itoa(r.Conns), strconv.FormatUint(r.Appended, 10),
				fmt.Sprintf("%d (%d)", r.Deliveries, r.Expected), bench.FormatRate(r.DeliveriesPerSec),
				nsDur(r.P50ns), nsDur(r.P90ns), nsDur(r.P99ns), nsDur(r.P999ns), nsDur(r.MaxNs),
				strconv.Itoa(r.ClientsMissingLast), strconv.FormatInt(r.OutOfOrder, 10), cpu, "`" + cmdOf[r] + "`"})
			if offered := r.Rate * r.DurationSeconds; float64(r.Appended) < wsDeliveredShare*offered {
				s.Notes = append(s.Notes, fmt.Sprintf("**%d connections: the server appended %d events in %.0f s, not the %.0f offered** (its %g/s ticker drops ticks "+
					"when an append and the fan-out fall behind on a saturated CPU), so the offered load was not reached.", r.Conns, r.Appended, r.DurationSeconds, offered, r.Rate))
			}
			m.Rows = append(m.Rows, []string{strconv.Itoa(r.Conns), bench.FormatDuration(time.Duration(r.ConnectSeconds * float64(time.Second))),
				fmt.Sprintf("%.1f → %.1f MiB", float64(r.RSSIdleKiB)/1024, float64(r.RSSClientsKiB)/1024),
				fmt.Sprintf("%.1f KiB", r.RSSPerConnKiB),
				fmt.Sprintf("%.1f KiB (%.1f, %.1f)", r.HeapStackPerConnKiB, r.HeapPerConnKiB, r.StackPerConnKiB)})
		}
		s.Tables = append(s.Tables, t, m)
	}
	if rep != nil {
		t := bench.Table{Header: []string{"round", "events", "time", "events/s", "out of order"}}
		for i, r := range rep.Rounds {
			t.Rows = append(t.Rows, []string{strconv.Itoa(i + 1), strconv.FormatInt(r.Events, 10),
				bench.FormatDuration(time.Duration(r.Seconds * float64(time.Second))), bench.FormatRate(r.EventsPerSec), strconv.FormatInt(r.OutOfOrder, 10)})
		}
		txt := fmt.Sprintf("Replay: wsbench fills a fresh store with %d events through ingest.Service.Append in batches of 10000 (server answer: `%s` = last id, fill time), "+
			"then one client opens `/stream?after=0` and reads until it has the last id; three rounds, one after another (`%s`).", replayN, strings.TrimSpace(rep.Prefill), repCmd)
		if replayN < wsReplayEvents {
			txt += fmt.Sprintf(" **The store holds %d events, not %d: capped by -events %d** (the replay size is min(1M, -events)).", replayN, wsReplayEvents, e.cfg.events)
		}
		s.Text = append(s.Text, txt)
		s.Tables = append(s.Tables, t)
	}

	// Targets.
	var big *wsFanout
	for _, r := range fan {
		if big == nil || r.Conns > big.Conns {
			big = r
		}
	}
	wantRate := float64(wsTargetConns * wsRate)
	switch {
	case big == nil:
		s.Check(fmt.Sprintf("%d connections at %d events/s (%s deliveries/s)", wsTargetConns, wsRate, bench.FormatRate(wantRate)),
			"p99 ≤ "+bench.FormatDuration(wsTargetP99), "no fan-out run completed", false)
	default:
		measured := fmt.Sprintf("%d connections: p99 %s, %s deliveries/s, %d of %d delivered", big.Conns, nsDur(big.P99ns),
			bench.FormatRate(big.DeliveriesPerSec), big.Deliveries, big.Expected)
		if big.ClientsMissingLast > 0 || big.OutOfOrder > 0 {
			measured += fmt.Sprintf(" (%d clients missing the last event, %d out of order)", big.ClientsMissingLast, big.OutOfOrder)
		}
		if big.Conns < wsTargetConns {
			measured += fmt.Sprintf(" — **capped by -ws-max-conns %d: not the %d-connection target**", e.cfg.wsMaxConns, wsTargetConns)
		}
		pass := big.Conns >= wsTargetConns && big.Delivered() &&
			big.DeliveriesPerSec >= wsDeliveredShare*wantRate && time.Duration(big.P99ns) <= wsTargetP99
		s.Check(fmt.Sprintf("%d connections at %d events/s (%s deliveries/s)", wsTargetConns, wsRate, bench.FormatRate(wantRate)),
			fmt.Sprintf("p99 ≤ %s, every event to every client, ≥ %s deliveries/s", bench.FormatDuration(wsTargetP99), bench.FormatRate(wsDeliveredShare*wantRate)),
			measured, pass)
		memB := big.RSSPerConnKiB * 1024
		s.Check(fmt.Sprintf("server memory per idle connection (RSS, %d connections)", big.Conns),
			fmt.Sprintf("≤ %d KB", wsTargetConnMem/1000),
			fmt.Sprintf("%.1f KB (%.1f KiB; Go heap+stack %.1f KiB)", memB/1000, big.RSSPerConnKiB, big.HeapStackPerConnKiB),
			memB <= wsTargetConnMem)
	}
	if rep != nil {
		rates := make([]float64, 0, len(rep.Rounds))
		bad := int64(0)
		for _, r := range rep.Rounds {
			rates = append(rates, r.EventsPerSec)
			bad += r.OutOfOrder
		}
		slices.Sort(rates)
		med := rates[len(rates)/2]
		measured := fmt.Sprintf("%s events/s (median of %d rounds; best %s)", bench.FormatRate(med), len(rates), bench.FormatRate(rates[len(rates)-1]))
		if bad > 0 {
			measured += fmt.Sprintf(", %d out of order", bad)
		}
		if replayN < wsReplayEvents {
			measured += fmt.Sprintf(" on %d events (capped by -events)", replayN)
		}
		s.Check(fmt.Sprintf("replay from after=0, %s events, one client", humanCount(replayN)), "≥ "+bench.FormatRate(wsTargetReplay)+" events/s",
			measured, med >= wsTargetReplay && bad == 0)
	} else {
		s.Check("replay from after=0, one client", "≥ "+bench.FormatRate(wsTargetReplay)+" events/s", "no replay run completed", false)
	}
	if capped {
		s.Notes = append(s.Notes, fmt.Sprintf("**Connections capped at %d by -ws-max-conns (a smoke run): the 10k target was not measured.**", e.cfg.wsMaxConns))
	}
	if big != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("The memory target is checked on the %d-connection run: the server's RSS difference (each side read after runtime.GC and "+
			"debug.FreeOSMemory) divided by the connections added. It is the server process's own memory; kernel socket buffers are not in its RSS. "+
			"KB = 1000 bytes, KiB = 1024.", big.Conns))
	}
	return errors.Join(errs...)
}

// runWSBench runs one wsbench command line with bash -c from the module
// root, streaming its text report (stderr) to the progress writer, and
// decodes the JSON object it prints on stdout into v.
func (e *env) runWSBench(line string, v any) error {
	cmd := exec.CommandContext(e.ctx, "bash", "-c", line)
	cmd.Dir = e.cfg.moduleDir
	// bash, wsbench and its server child share a process group: an
	// interrupted run kills all three.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 30 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, e.progress)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", line, err, oneLine(strings.TrimSpace(stderr.String())))
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), v); err != nil {
		return fmt.Errorf("%s: parsing its -json output %q: %w", line, oneLine(stdout.String()), err)
	}
	return nil
}
