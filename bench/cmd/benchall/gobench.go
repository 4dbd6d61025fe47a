package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/securevision/events/bench"
)

// Targets of section a.
const (
	targetAppendRatio     = 0.5     // batched log append vs raw Pebble
	targetConcurrentAppnd = 100_000 // events/s, 64 concurrent single appends
)

// runAppend runs the eventlog benchmarks (log vs raw Pebble in the same
// process and run) and reports medians over -count.
func runAppend(e *env, s *bench.Section) error {
	_, rs, cmd, err := bench.RunGoBench(e.ctx, e.cfg.moduleDir, e.progress,
		"-run", "^$", "-bench", "Append|RawPebble|ConcurrentSingle",
		"-benchtime", e.cfg.benchtime, "-count", strconv.Itoa(e.cfg.count), "./eventlog/")
	s.Commands = append(s.Commands, cmd)
	if err != nil {
		return err
	}
	s.Text = append(s.Text, fmt.Sprintf("Synced appends of %d-byte events on one disk, no indexes (the log alone, eventlog/bench_test.go). "+
		"Medians of %d runs; the ratio compares the log with raw Pebble batches of the same records committed with Sync in the same run.",
		220, e.cfg.count))
	t := bench.Table{Header: []string{"batch", "log events/s", "raw Pebble events/s", "log / raw", "log allocs/op", "runs"}}
	for _, n := range []int{1, 100, 1000} {
		name := fmt.Sprintf("batch=%d", n)
		lg, k := bench.Median(rs, "Append/"+name, "events/s")
		raw, _ := bench.Median(rs, "RawPebble/"+name, "events/s")
		allocs, _ := bench.Median(rs, "Append/"+name, "allocs/op")
		if k == 0 || raw == 0 {
			return fmt.Errorf("no results for %s in the benchmark output", name)
		}
		ratio := lg / raw
		t.Rows = append(t.Rows, []string{strconv.Itoa(n), bench.FormatRate(lg), bench.FormatRate(raw),
			fmt.Sprintf("%.2f", ratio), fmt.Sprintf("%.0f", allocs), strconv.Itoa(k)})
		if n > 1 {
			s.Check(fmt.Sprintf("append batch=%d vs raw Pebble", n), fmt.Sprintf("≥ %.0f%%", 100*targetAppendRatio),
				fmt.Sprintf("%.0f%% (%s vs %s events/s)", 100*ratio, bench.FormatRate(lg), bench.FormatRate(raw)), ratio >= targetAppendRatio)
		}
	}
	s.Tables = append(s.Tables, t)
	conc, k := bench.Median(rs, "ConcurrentSingleAppends", "events/s")
	if k == 0 {
		return fmt.Errorf("no ConcurrentSingleAppends result")
	}
	s.Check("64 concurrent single-event appends", fmt.Sprintf("≥ %s events/s", bench.FormatRate(targetConcurrentAppnd)),
		bench.FormatRate(conc)+" events/s", conc >= targetConcurrentAppnd)
	if rawc, k := bench.Median(rs, "RawPebbleConcurrentSingle", "events/s"); k > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("Baseline for the 64-concurrent target, same run: raw Pebble with 64 goroutines each committing "+
			"a one-record batch of the same bytes with Sync (Pebble's own commit pipeline shares the fsyncs) reached %s events/s; "+
			"the log reached %.0f%% of it.", bench.FormatRate(rawc), 100*conc/rawc))
	}
	s.Notes = append(s.Notes, "batch=1 has no target: one synced append per call is bounded by the fsync, for the log and for raw Pebble alike.")
	return nil
}

// runAllocs runs the in-process request benchmarks of bench/ and tables
// their allocations.
func runAllocs(e *env, s *bench.Section) error {
	_, rs, cmd, err := bench.RunGoBench(e.ctx, e.cfg.moduleDir, e.progress,
		"-run", "^$", "-bench", ".", "-benchmem", "./bench/")
	s.Commands = append(s.Commands, cmd)
	if err != nil {
		return err
	}
	s.Text = append(s.Text, "Each request goes through httpd.Server's whole handler chain (router, metrics, headers, handler) "+
		"with an httptest.ResponseRecorder, over a 100k-event store built with bench.BuildStore (bench/bench_test.go). "+
		"`RecorderOverhead` is the harness alone; the last column subtracts it.")
	var harness float64
	if v, k := bench.Median(rs, "RecorderOverhead", "allocs/op"); k > 0 {
		harness = v
	}
	t := bench.Table{Header: []string{"benchmark", "ns/op", "B/op", "allocs/op", "allocs/op minus harness", "other"}}
	for _, name := range bench.Names(rs) {
		ns, _ := bench.Median(rs, name, "ns/op")
		bop, _ := bench.Median(rs, name, "B/op")
		al, _ := bench.Median(rs, name, "allocs/op")
		var other []string
		for _, u := range []string{"resp-bytes", "events/s", "MB/s"} {
			if v, k := bench.Median(rs, name, u); k > 0 {
				other = append(other, fmt.Sprintf("%s %s", bench.FormatRate(v), u))
			}
		}
		own := "—"
		if name != "RecorderOverhead" {
			own = fmt.Sprintf("%.0f", al-harness)
		}
		t.Rows = append(t.Rows, []string{name, fmt.Sprintf("%.0f", ns), fmt.Sprintf("%.0f", bop), fmt.Sprintf("%.0f", al), own, strings.Join(other, ", ")})
	}
	s.Tables = append(s.Tables, t)
	if v, k := bench.Median(rs, "IngestBatch1000", "allocs/op"); k > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("POST /ingest allocates %.1f objects per event (%.0f per 1000-event request).", (v-harness)/1000, v-harness))
	}
	return nil
}
