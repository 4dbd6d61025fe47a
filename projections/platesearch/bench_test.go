package platesearch

import (
	"testing"

	"github.com/securevision/events/projections/platesearch/platesearchtest"
)

// benchPlates is the size bench/cmd/benchall measures at too.
const benchPlates = 100_000

func benchIndex(b *testing.B) ([]string, *Index) {
	b.Helper()
	plates := platesearchtest.Plates(benchPlates, 1)
	x := NewIndex()
	for _, p := range plates {
		x.Add(p)
	}
	return plates, x
}

// queriesOf returns the workload's queries of one kind, parsed.
func queriesOf(b *testing.B, plates []string, kind string) ([]Pattern, []float64) {
	b.Helper()
	var ps []Pattern
	var mds []float64
	for _, q := range platesearchtest.Queries(plates, 700, 2) {
		if q.Kind != kind {
			continue
		}
		p, err := ParseQuery(q.Text)
		if err != nil {
			b.Fatal(err)
		}
		ps, mds = append(ps, p), append(mds, q.MaxDist)
	}
	return ps, mds
}

// BenchmarkSearch is one search of each workload kind over 100k plates.
func BenchmarkSearch(b *testing.B) {
	plates, x := benchIndex(b)
	for _, kind := range platesearchtest.Kinds {
		ps, mds := queriesOf(b, plates, kind)
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := x.SearchPattern(ps[i%len(ps)], mds[i%len(ps)], 50); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkScan is the brute-force scan of the same searches.
func BenchmarkScan(b *testing.B) {
	plates, _ := benchIndex(b)
	for _, kind := range []string{platesearchtest.Exact, platesearchtest.Infix} {
		ps, mds := queriesOf(b, plates, kind)
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := Scan(plates, ps[i%len(ps)], mds[i%len(ps)], 50); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAddRemove is one Add and one Remove at 100k plates.
func BenchmarkAddRemove(b *testing.B) {
	_, x := benchIndex(b)
	extra := platesearchtest.Plates(benchPlates+10_000, 3)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := extra[i%len(extra)]
		x.Add(p + "X")
		x.Remove(p + "X")
		i++
	}
}
