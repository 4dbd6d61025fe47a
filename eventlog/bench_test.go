package eventlog_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securevision/events/eventlog"
)

// benchValueBytes is the stored size of a typical event (header + JSON),
// about what benchRecords' record takes (storedValue checks it). The raw
// Pebble benchmarks commit that stored value, so the log and raw Pebble
// are compared on the same bytes.
const benchValueBytes = 220

func benchRecords(n int) []eventlog.Record {
	head := []byte(`"type":"plate_read","ts_ms":1704067205000,"frame_source_id":"camera_driveway"`)
	tail := []byte(`"payload":{"plate_text":"ABC1234","confidence":0.88,"region":"US-CA","list_match":null}`)
	recs := make([]eventlog.Record, n)
	for i := range recs {
		recs[i] = eventlog.Record{Type: 2, TsMs: 1704067205000, Source: "camera_driveway", Head: head, Tail: tail}
	}
	return recs
}

func openBench(b *testing.B) *eventlog.Log {
	l, err := eventlog.Open(eventlog.Options{URL: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkAppend measures synced appends of batches of 1, 100 and 1000
// records (no indexes: the log alone, comparable with raw Pebble below).
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			l := openBench(b)
			recs := benchRecords(n)
			b.ReportAllocs()
			b.SetBytes(int64(n * benchValueBytes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := l.Append(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRawPebble is the baseline: Pebble batches of the same count and
// the same bytes (the values the log stores for benchRecords, so
// compression and compaction costs match), committed with Sync, sequential
// keys, nothing else.
func BenchmarkRawPebble(b *testing.B) {
	val := storedValue(b)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{MemTableSize: 64 << 20, Logger: quietLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			id := uint64(0)
			b.ReportAllocs()
			b.SetBytes(int64(n * benchValueBytes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch := db.NewBatch()
				for j := 0; j < n; j++ {
					id++
					batch.Set(eventlog.LogKey(id), val, nil)
				}
				if err := batch.Commit(pebble.Sync); err != nil {
					b.Fatal(err)
				}
				batch.Close()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkConcurrentSingleAppends: 64 goroutines each appending one
// record at a time; group commit shares the fsyncs.
func BenchmarkConcurrentSingleAppends(b *testing.B) {
	l := openBench(b)
	recs := benchRecords(1)
	runConcurrent(b, func() error {
		_, _, err := l.Append(context.Background(), recs)
		return err
	})
}

// BenchmarkRawPebbleConcurrentSingle is the baseline for the one above:
// 64 goroutines each committing a one-record batch of the same bytes with
// Sync, through Pebble's own commit pipeline (which shares fsyncs between
// concurrent committers). It is the ceiling this disk and Pebble give 64
// closed-loop appenders.
func BenchmarkRawPebbleConcurrentSingle(b *testing.B) {
	val := storedValue(b)
	db, err := pebble.Open(b.TempDir(), &pebble.Options{MemTableSize: 64 << 20, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var id atomic.Uint64
	runConcurrent(b, func() error {
		batch := db.NewBatch()
		defer batch.Close()
		_ = batch.Set(eventlog.LogKey(id.Add(1)), val, nil)
		return batch.Commit(pebble.Sync)
	})
}

// runConcurrent runs appendOne from 64 closed-loop goroutines, b.N calls
// in all, and reports events/s.
func runConcurrent(b *testing.B, appendOne func() error) {
	const workers = 64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/workers + 1
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := appendOne(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*workers)/b.Elapsed().Seconds(), "events/s")
}

// storedValue appends one benchRecords record and returns what the log
// stored for it.
func storedValue(b *testing.B) []byte {
	l, err := eventlog.Open(eventlog.Options{URL: "memory://"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	id, _, err := l.Append(context.Background(), benchRecords(1))
	if err != nil {
		b.Fatal(err)
	}
	v, err := l.Get(id)
	if err != nil {
		b.Fatal(err)
	}
	if len(v) < benchValueBytes-40 || len(v) > benchValueBytes+40 {
		b.Fatalf("stored value is %d bytes, the benchmark assumes about %d", len(v), benchValueBytes)
	}
	return v
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}
