package main

import (
	"fmt"
	"reflect"
	"runtime"
	"time"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/projections/platesearch"
	"github.com/securevision/events/projections/platesearch/platesearchtest"
)

const (
	// platesearchPlates is the index size the target is stated at.
	platesearchPlates = 100_000
	// platesearchPerKind queries of each kind: enough for a p99, few
	// enough that the brute-force scans of the same queries take seconds.
	platesearchPerKind = 200
	// platesearchLimit is the page of hits each search asks for.
	platesearchLimit = 50
	// targetPlatesearchP99 is the p99 latency target of one search over
	// the realistic mix.
	targetPlatesearchP99 = 5 * time.Millisecond
)

// runPlatesearch measures the plate search library in this process: it
// indexes 100k distinct plates, then runs each query of a realistic mix
// through the index and through a brute-force scan of the same plates
// (the same distance function), checks that both answer the same, and
// reports the latencies and their ratio.
func runPlatesearch(e *env, s *bench.Section) error {
	s.Commands = append(s.Commands, "go run ./bench/cmd/benchall -include platesearch")
	plates := platesearchtest.Plates(platesearchPlates, 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	x := platesearch.NewIndex()
	for _, p := range plates {
		x.Add(p)
	}
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(x)

	queries := platesearchtest.Queries(plates, platesearchPerKind*len(platesearchtest.Kinds), 2)
	idx, scan := map[string]*bench.Histogram{}, map[string]*bench.Histogram{}
	var allIdx, allScan bench.Histogram
	for _, k := range platesearchtest.Kinds {
		idx[k], scan[k] = &bench.Histogram{}, &bench.Histogram{}
	}
	for i, q := range queries {
		if i%100 == 0 {
			if err := e.ctx.Err(); err != nil {
				return err
			}
		}
		p, err := platesearch.ParseQuery(q.Text)
		if err != nil {
			return fmt.Errorf("query %q: %w", q.Text, err)
		}
		// The index and the scan alternate, so the machine's noise falls
		// on both alike.
		t0 := time.Now()
		got, err := x.SearchPattern(p, q.MaxDist, platesearchLimit)
		t1 := time.Now()
		want, serr := platesearch.Scan(plates, p, q.MaxDist, platesearchLimit)
		t2 := time.Now()
		if err != nil || serr != nil {
			return fmt.Errorf("query %q: index %v, scan %v", q.Text, err, serr)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("query %q max distance %v: the index answered %d hits, the scan %d, or others", q.Text, q.MaxDist, len(got), len(want))
		}
		idx[q.Kind].Record(t1.Sub(t0))
		scan[q.Kind].Record(t2.Sub(t1))
		allIdx.Record(t1.Sub(t0))
		allScan.Record(t2.Sub(t1))
	}

	s.Text = append(s.Text, fmt.Sprintf("projections/platesearch in this process: %d distinct plates of mixed national formats "+
		"(platesearchtest.Plates), indexed in %s (heap growth %.0f MiB for the plate and suffix tries). "+
		"Each of %d queries (%d of each kind below, limit %d) runs through the index and, right after, through a brute-force "+
		"scan of the same plates with the same distance (platesearch.Scan); both answers are checked equal. "+
		"Ratio = scan / index at the same percentile.",
		len(plates), bench.FormatDuration(build), float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20),
		len(queries), platesearchPerKind, platesearchLimit))
	t := bench.Table{Header: []string{"queries", "example", "max distance", "index p50", "index p99", "scan p50", "scan p99", "ratio p50", "ratio p99"}}
	row := func(name, example, md string, a, b *bench.Histogram) {
		ip50, ip99, sp50, sp99 := a.Quantile(0.5), a.Quantile(0.99), b.Quantile(0.5), b.Quantile(0.99)
		t.Rows = append(t.Rows, []string{name, example, md,
			bench.FormatDuration(ip50), bench.FormatDuration(ip99), bench.FormatDuration(sp50), bench.FormatDuration(sp99),
			fmt.Sprintf("%.0f×", float64(sp50)/float64(max(ip50, 1))), fmt.Sprintf("%.0f×", float64(sp99)/float64(max(ip99, 1)))})
	}
	for i, k := range platesearchtest.Kinds {
		q := queries[i] // Queries deals the kinds in the order of Kinds
		row(k, "`"+q.Text+"`", fmt.Sprint(q.MaxDist), idx[k], scan[k])
	}
	row("all", "", "", &allIdx, &allScan)
	s.Tables = append(s.Tables, t)
	p99 := allIdx.Quantile(0.99)
	s.Check(fmt.Sprintf("plate search p99 at %dk plates (mix above)", platesearchPlates/1000),
		"≤ "+bench.FormatDuration(targetPlatesearchP99), bench.FormatDuration(p99), p99 <= targetPlatesearchP99)
	return nil
}
