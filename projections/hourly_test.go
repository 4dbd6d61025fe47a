package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// bruteHourly counts the store's records by reading every one of them:
// the answer Hourly must give for typ (0: all detections) at now.
func bruteHourly(t *testing.T, l eventlog.RecordLog, typ uint8, now time.Time) map[string][projections.HourlyWindow]uint64 {
	t.Helper()
	cur := now.UnixMilli() / projections.HourMs
	first := cur - projections.HourlyWindow + 1
	it, err := l.NewLogIter(0, l.LastID())
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string][projections.HourlyWindow]uint64{}
	for ok := it.First(); ok; ok = it.Next() {
		c, ts, src, _, err := eventlog.SplitValue(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		if !vocab.IsDetection(c) || typ != 0 && c != typ {
			continue
		}
		if hr := ts / projections.HourMs; hr >= first && hr <= cur {
			a := out[string(src)]
			a[hr-first]++
			out[string(src)] = a
		}
	}
	return out
}

func checkHourly(t *testing.T, h *projections.Hourly, l eventlog.RecordLog, now time.Time) {
	t.Helper()
	for _, typ := range []uint8{0, vocab.FaceMatchCode, vocab.PlateReadCode} {
		want := bruteHourly(t, l, typ, now)
		got := h.Counts(typ)
		if !got.Complete || got.Err != nil {
			t.Fatalf("type %d: complete %v, err %v after Wait", typ, got.Complete, got.Err)
		}
		if wantStart := (now.UnixMilli()/projections.HourMs - projections.HourlyWindow + 1) * projections.HourMs; got.StartMs != wantStart {
			t.Errorf("StartMs %d, want %d", got.StartMs, wantStart)
		}
		if len(got.Sources) != len(want) {
			t.Errorf("type %d: %d sources, want %d", typ, len(got.Sources), len(want))
		}
		for i, s := range got.Sources {
			if s.Counts != want[s.Source] {
				t.Errorf("type %d, %s:\n got %v\nwant %v", typ, s.Source, s.Counts, want[s.Source])
			}
			var total uint64
			for _, k := range s.Counts {
				total += k
			}
			if total != s.Total || total == 0 {
				t.Errorf("%s: total %d, counts sum to %d", s.Source, s.Total, total)
			}
			if i > 0 && (got.Sources[i-1].Total < s.Total ||
				got.Sources[i-1].Total == s.Total && got.Sources[i-1].Source > s.Source) {
				t.Errorf("sources out of order at %d", i)
			}
		}
	}
}

// randomEvents makes n detections stamped between now-36h and now+2h,
// some of them far off (future, ancient).
func randomEvents(r *rand.Rand, n int, now time.Time) []ingest.Event {
	evs := make([]ingest.Event, 0, n)
	for range n {
		ts := now.UnixMilli() - int64(r.IntN(36*3600*1000)) + 2*3600*1000
		switch r.IntN(20) {
		case 0:
			ts = now.UnixMilli() + 30*3600*1000 // beyond hourlyAhead
		case 1:
			ts = 1 + int64(r.IntN(1000))
		}
		src := fmt.Sprintf("cam_%d", r.IntN(5))
		if r.IntN(2) == 0 {
			evs = append(evs, storetest.Face(src, ts, "p"))
		} else {
			evs = append(evs, storetest.Plate(src, ts, "ABC123"))
		}
	}
	return evs
}

type recordsLogged struct {
	slog.Handler
	n *atomic.Int64
}

func (recordsLogged) Enabled(context.Context, slog.Level) bool { return true }

func (h recordsLogged) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "records" {
			h.n.Store(a.Value.Int64())
		}
		return true
	})
	return nil
}

// TestHourlyMatchesBruteForce: the counts equal a count over every stored
// record, for events stored before the first Counts (the rebuild), during
// the rebuild (racing appends), after it (the commit bus), and after a
// deletion inside the window followed by Invalidate; as the clock moves,
// hours leave the window and future-stamped events enter it.
func TestHourlyMatchesBruteForce(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	st := storetest.Open(t, storetest.Options{Now: now})
	var scanned atomic.Int64
	h, err := projections.NewHourly(projections.HourlyOptions{Log: st.Log, View: st.View, Now: now,
		Logger: slog.New(recordsLogged{slog.DiscardHandler, &scanned})})
	if err != nil {
		t.Fatal(err)
	}
	st.Subscribe(h.Committed)
	r := rand.New(rand.NewPCG(1, 2))
	// Old events, whole blocks of them, which the zone map lets the
	// rebuild skip.
	old := make([]ingest.Event, 0, 5000)
	for i := range 5000 {
		old = append(old, storetest.Face("cam_old", now().Add(-72*time.Hour).UnixMilli()+int64(i), "p"))
	}
	st.Append(t, old...)
	for range 10 {
		st.Append(t, randomEvents(r, 300, now())...)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	w := st.Log.LastID()
	h.Counts(0) // starts the rebuild
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 10 {
			st.Append(t, randomEvents(r, 100, now())...)
		}
	}()
	wg.Wait()
	if err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	checkHourly(t, h, st.Log, now())
	// Ids 1..5000 are 72 h old: blocks 0 to 3 (ids up to 4095) hold
	// nothing else and must not be read.
	if n := scanned.Load(); n <= 0 || n > int64(w)-4095 {
		t.Errorf("the rebuild read %d records of %d: the old blocks were not skipped", n, w)
	}

	// Live only, and then a clock that moves on: five hours later the
	// oldest hours left and some future-stamped events came in.
	st.Append(t, randomEvents(r, 500, now())...)
	checkHourly(t, h, st.Log, now())
	clock.Add(5 * projections.HourMs)
	checkHourly(t, h, st.Log, now())

	// A deletion inside the window (as an erasure would make), then
	// Invalidate.
	if _, err := st.View.Cleanup(ctx, now().Add(-10*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	h.Invalidate()
	if err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	checkHourly(t, h, st.Log, now())
}

// TestHourlyEmpty: a brand-new store answers an empty,
// complete window; the projection refuses to be built without its parts.
func TestHourlyEmpty(t *testing.T) {
	st := storetest.Open(t, storetest.Options{})
	h, err := projections.NewHourly(projections.HourlyOptions{Log: st.Log, View: st.View})
	if err != nil {
		t.Fatal(err)
	}
	st.Subscribe(h.Committed)
	h.Counts(0)
	if err := h.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := h.Counts(0); !c.Complete || len(c.Sources) != 0 {
		t.Fatalf("empty store: %+v", c)
	}
	st.Append(t, storetest.Plate("cam", time.Now().UnixMilli(), "XYZ"))
	c := h.Counts(vocab.PlateReadCode)
	if len(c.Sources) != 1 || c.Sources[0].Source != "cam" || c.Sources[0].Counts[projections.HourlyWindow-1] != 1 {
		t.Fatalf("one live plate read: %+v", c)
	}
	if c := h.Counts(vocab.FaceMatchCode); len(c.Sources) != 0 {
		t.Fatalf("face filter counted a plate: %+v", c)
	}
	if _, err := projections.NewHourly(projections.HourlyOptions{}); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("NewHourly without Log and View: %v", err)
	}
}
