package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
)

func open(t *testing.T, o Options) *Core {
	t.Helper()
	c, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func faces(n int, ts int64) []ingest.Event {
	evs := make([]ingest.Event, n)
	for i := range evs {
		evs[i] = ingest.Event{Type: ingest.TypeFace, TsMs: ts, Source: fmt.Sprintf("cam-%d", i%3),
			Face: &ingest.Face{PersonName: "x", Similarity: 0.9, BBox: ingest.BBox{1, 2, 3, 4}}}
	}
	return evs
}

// The bus's order: the projections first (a subscriber already sees the
// batch in /health's counts), then the subscribers in the order they
// subscribed; an unsubscribed one gets nothing more.
func TestBusOrder(t *testing.T) {
	c := open(t, Options{URL: "memory://"})
	type call struct {
		sub    string
		first  uint64
		recent uint64
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	sub := func(name string) func(eventlog.Batch) {
		return func(b eventlog.Batch) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{name, b.Entries[0].ID, c.View().Recent().Total()})
		}
	}
	c.Subscribe(sub("a"))
	unsubB := c.Subscribe(sub("b"))
	now := time.Now().UnixMilli()
	ctx := context.Background()
	if _, err := c.Ingest().Append(ctx, faces(3, now)); err != nil {
		t.Fatal(err)
	}
	unsubB()
	unsubB() // idempotent
	c.Subscribe(sub("c"))
	if _, err := c.Ingest().Append(ctx, faces(2, now)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []call{{"a", 1, 3}, {"b", 1, 3}, {"a", 4, 5}, {"c", 4, 5}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls (subscriber, first id, recent count seen) = %v, want %v", calls, want)
	}
}

// The bus adds nothing per batch on the commit goroutine but an atomic
// load: no allocation (and no lock: see committed).
func TestBusAllocations(t *testing.T) {
	c := open(t, Options{URL: "memory://"})
	n := 0
	for range 3 {
		c.Subscribe(func(b eventlog.Batch) { n += len(b.Entries) })
	}
	b := eventlog.Batch{Entries: make([]eventlog.Entry, 100)}
	for i := range b.Entries {
		b.Entries[i] = eventlog.Entry{ID: uint64(i + 1), Type: 1, TsMs: time.Now().UnixMilli()}
	}
	if a := testing.AllocsPerRun(100, func() { c.committed(b) }); a != 0 {
		t.Fatalf("%v allocations per committed batch, want 0", a)
	}
	if n == 0 {
		t.Fatal("subscribers not called")
	}
}

// ReadOnly opens the log alone: what verify and export need, with nothing
// that could write.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(Options{URL: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest().Append(context.Background(), faces(4, time.Now().UnixMilli())); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ro := open(t, Options{URL: dir, ReadOnly: true})
	if ro.View() != nil || ro.Ingest() != nil {
		t.Fatalf("read-only core has View %v, Ingest %v; want neither", ro.View(), ro.Ingest())
	}
	if got := ro.Log().LastID(); got != 4 {
		t.Fatalf("LastID = %d, want 4", got)
	}
	if _, _, err := ro.Log().Append(context.Background(), []eventlog.Record{{Type: 1, TsMs: 1}}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("append to a read-only log: %v, want ErrClosed", err)
	}
}

// Close lets what was appended commit and reach the subscribers, and
// refuses appends after it.
func TestClose(t *testing.T) {
	c, err := Open(Options{URL: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	c.Subscribe(func(b eventlog.Batch) { got = b.Entries[len(b.Entries)-1].ID })
	res, err := c.Ingest().Append(context.Background(), faces(5, time.Now().UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got != res.LastID {
		t.Fatalf("subscriber saw up to %d, append returned %d", got, res.LastID)
	}
	if _, err := c.Ingest().Append(context.Background(), faces(1, time.Now().UnixMilli())); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}
