package eventlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

func verifyClean(t *testing.T, l *eventlog.Log) *projections.VerifyReport {
	t.Helper()
	rep, err := projections.Verify(l)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("verify found problems:\n%s", strings.Join(rep.Problems, "\n"))
	}
	return rep
}

func TestConcurrentAppendersGetContiguousUniqueIDs(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	const writers, perWriter = 64, 40
	type span struct{ first, last uint64 }
	var (
		mu    sync.Mutex
		spans []span
		wg    sync.WaitGroup
	)
	now := time.Now().UnixMilli()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				n := 1 + (w+i)%3 // batches of 1..3 must stay contiguous
				evs := make([]ingest.Event, n)
				for j := range evs {
					evs[j] = storetest.Face(fmt.Sprintf("cam-%d", w), now, fmt.Sprintf("w%d-%d-%d", w, i, j))
				}
				res, err := s.Ingest.Append(context.Background(), evs)
				if err != nil {
					t.Error(err)
					return
				}
				if res.LastID-res.FirstID+1 != uint64(n) {
					t.Errorf("batch of %d got ids %d..%d", n, res.FirstID, res.LastID)
				}
				mu.Lock()
				spans = append(spans, span{res.FirstID, res.LastID})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(spans, func(a, b span) int { return int(a.first) - int(b.first) })
	next := uint64(1)
	for _, sp := range spans {
		if sp.first != next {
			t.Fatalf("ids not contiguous: span starts at %d, expected %d", sp.first, next)
		}
		next = sp.last + 1
	}
	if got := s.Log.LastID(); got != next-1 {
		t.Fatalf("LastID %d, want %d", got, next-1)
	}
	// Each stored record's JSON carries its own id and the writer's name.
	for id := uint64(1); id < next; id++ {
		v, err := s.Log.Get(id)
		if err != nil {
			t.Fatalf("get %d: %v", id, err)
		}
		_, _, _, js, _ := eventlog.SplitValue(v)
		var ev struct {
			ID uint64 `json:"id"`
		}
		if err := json.Unmarshal(js, &ev); err != nil || ev.ID != id {
			t.Fatalf("record %d decodes to id %d (%v): %s", id, ev.ID, err, js)
		}
	}
	verifyClean(t, s.Log)
}

func TestIDsContinueAfterRestartAndTrim(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-48 * time.Hour).UnixMilli()
	s, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.Append(t, storetest.Plate("cam", old, "OLD"))
	}
	// Trim everything: the next id must still be 6, not 1.
	if n, err := s.View.Cleanup(context.Background(), time.Now().UnixMilli()); err != nil || n != 5 {
		t.Fatalf("cleanup = %d, %v", n, err)
	}
	if err := s.Log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Log.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := s.Log.Append(context.Background(), []eventlog.Record{{}}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	s2, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Log.Close()
	res := s2.Append(t, storetest.Plate("cam", time.Now().UnixMilli(), "NEW"))
	if res.FirstID != 6 {
		t.Fatalf("after restart first id %d, want 6", res.FirstID)
	}
	if st := s2.Log.State(); st.First != 6 || st.Last != 6 {
		t.Fatalf("state %+v, want first 6 last 6", st)
	}
	verifyClean(t, s2.Log)
}

// TestIDsContinueAfterNewestRecordExpires: retention deletes a late
// (back-filled, expired) record that is the newest in the log, so the last
// record no longer tells the next id; the id must not be reused after a
// restart. Appends do not write the next id (it follows from the last
// record); deletions persist it.
func TestIDsContinueAfterNewestRecordExpires(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	s, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(t, storetest.Plate("cam", now.UnixMilli(), "NEW1"), storetest.Plate("cam", now.UnixMilli(), "NEW2"))
	s.Append(t, storetest.Plate("cam", now.Add(-48*time.Hour).UnixMilli(), "LATE"))
	if n, err := s.View.Cleanup(context.Background(), now.Add(-24*time.Hour).UnixMilli()); err != nil || n != 1 {
		t.Fatalf("cleanup = %d, %v; want the late record deleted", n, err)
	}
	if err := s.Log.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Log.Close()
	if st := s2.Log.State(); st.Last != 3 {
		t.Fatalf("after restart last id %d, want 3 (the deleted record's id)", st.Last)
	}
	if res := s2.Append(t, storetest.Plate("cam", now.UnixMilli(), "NEW3")); res.FirstID != 4 {
		t.Fatalf("after restart first id %d, want 4: id 3 was used by the deleted record", res.FirstID)
	}
	verifyClean(t, s2.Log)
}

func TestCreatedAtNeverDecreases(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := storetest.Open(t, storetest.Options{Now: now})
	s.Append(t, storetest.Face("cam", 1704067200000, "a"))
	mu.Lock()
	clock = clock.Add(-time.Hour) // the wall clock steps back
	mu.Unlock()
	s.Append(t, storetest.Face("cam", 1704067200000, "b"))
	for id := uint64(1); id <= 2; id++ {
		v, _ := s.Log.Get(id)
		if !bytes.Contains(v, []byte(`"created_at":"2024-01-01T00:00:05.000Z"`)) {
			t.Fatalf("record %d: %s", id, v)
		}
	}
}

// TestCrashKeepsAcknowledgedEvents appends on Pebble's crashable memory
// FS, takes crash clones (only synced data survives) at random moments
// while appenders run, and checks every acknowledged event in each clone.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := storetest.Open(t, storetest.Options{FS: fs, Dir: "db"})
	now := time.Now().UnixMilli()
	var (
		mu    sync.Mutex
		acked = map[uint64]string{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := []int{1, 5, 50}[i%3]
				evs := make([]ingest.Event, n)
				names := make([]string, n)
				for j := range evs {
					names[j] = fmt.Sprintf("w%d-%d-%d", w, i, j)
					evs[j] = storetest.Face(fmt.Sprintf("cam-%d", w%3), now+int64(j), names[j])
				}
				res, err := s.Ingest.Append(context.Background(), evs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j := range names {
					acked[res.FirstID+uint64(j)] = names[j]
				}
				mu.Unlock()
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var clones []*vfs.MemFS
	var ackedAt []map[uint64]string
	for c := 0; c < 5; c++ {
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		// Snapshot what was acknowledged BEFORE the crash point.
		mu.Lock()
		snap := make(map[uint64]string, len(acked))
		for k, v := range acked {
			snap[k] = v
		}
		mu.Unlock()
		clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng}))
		ackedAt = append(ackedAt, snap)
	}
	close(stop)
	wg.Wait()
	for i, cfs := range clones {
		l, err := eventlog.Open(eventlog.Options{URL: "db", FS: cfs, ReadOnly: true})
		if err != nil {
			t.Fatalf("clone %d: open: %v", i, err)
		}
		rep := verifyClean(t, l)
		if len(ackedAt[i]) == 0 {
			t.Fatalf("clone %d: nothing acknowledged before the crash; test too fast", i)
		}
		for id, name := range ackedAt[i] {
			v, err := l.Get(id)
			if err != nil {
				t.Fatalf("clone %d: acknowledged id %d lost: %v", i, id, err)
			}
			if !bytes.Contains(v, []byte(`"person_name":"`+name+`"`)) {
				t.Fatalf("clone %d: id %d holds %s, want %s", i, id, v, name)
			}
		}
		t.Logf("clone %d: %d acknowledged, %d stored", i, len(ackedAt[i]), rep.Events)
		l.Close()
	}
}

func TestMemoryURLAndSQLiteRefusal(t *testing.T) {
	l, err := eventlog.Open(eventlog.Options{URL: "memory://"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err = eventlog.Open(eventlog.Options{URL: "sqlite:///data/events.db"})
	if err == nil || !strings.Contains(err.Error(), `pebble:///data/events`) {
		t.Fatalf("sqlite URL: %v", err)
	}
	for _, tc := range []struct{ in, dir string }{
		{"pebble:///abs/dir", "/abs/dir"}, {"pebble://rel/dir", "rel/dir"}, {"some/dir", "some/dir"},
	} {
		dir, mem, err := eventlog.ParseURL(tc.in)
		if err != nil || mem || dir != tc.dir {
			t.Errorf("ParseURL(%q) = %q, %v, %v", tc.in, dir, mem, err)
		}
	}
	if _, _, err := eventlog.ParseURL("redis://x"); err == nil {
		t.Error("redis URL accepted")
	}
}

// TestReusedBuffersKeepStoredRecordsIntact appends from writers that
// overwrite their record buffers as soon as Append returns (as ingest's
// pool does), in group commits small enough for the writer to reuse Pebble
// batches and some too large to, then checks every stored record, every
// published entry and the covering index: an entry or record that aliases
// its caller's buffer shows up with '#' bytes or another record's marker,
// and records committed through reused batches must read back whole.
func TestReusedBuffersKeepStoredRecordsIntact(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	var mu sync.Mutex
	var published []eventlog.Entry // kept, as the WebSocket hub keeps them
	s.Subscribe(func(b eventlog.Batch) {
		mu.Lock()
		published = append(published, b.Entries...)
		mu.Unlock()
	})
	const writers, rounds = 8, 12
	now := time.Now().UnixMilli()
	var wg sync.WaitGroup
	want := map[uint64]string{} // id -> the marker its JSON must carry
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			var recs []eventlog.Record
			for r := range rounds {
				n := 1 + (w*rounds+r)%500
				pad := 16
				if w == 0 && r%4 == 3 {
					n, pad = 2000, 2500 // about 5 MiB: past the reuse bound
				}
				buf, recs = buf[:0], recs[:0]
				markers := make([]string, n)
				for i := range n {
					markers[i] = fmt.Sprintf("w%d-r%d-i%d", w, r, i)
					h := len(buf)
					buf = fmt.Appendf(buf, `"type":"face_match","ts_ms":%d,"frame_source_id":"cam-%d"`, now, w%3)
					t0 := len(buf)
					buf = fmt.Appendf(buf, `"payload":{"person_name":%q,"pad":%q}`, markers[i], strings.Repeat("x", pad))
					recs = append(recs, eventlog.Record{
						Type: vocab.FaceMatchCode, TsMs: now, Source: fmt.Sprintf("cam-%d", w%3),
						Head: buf[h:t0:t0], Tail: buf[t0:len(buf):len(buf)],
					})
				}
				first, last, err := s.Log.Append(context.Background(), recs)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range buf {
					buf[i] = '#' // the caller's buffer is its own again
				}
				if last-first+1 != uint64(n) {
					t.Errorf("%d records got ids %d..%d", n, first, last)
					return
				}
				mu.Lock()
				for i := range n {
					want[first+uint64(i)] = markers[i]
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	check := func(what string, id uint64, js []byte) {
		t.Helper()
		var ev struct {
			ID      uint64 `json:"id"`
			Payload struct {
				PersonName string `json:"person_name"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(js, &ev); err != nil || ev.ID != id || ev.Payload.PersonName != want[id] {
			t.Fatalf("%s %d holds id %d, marker %q (%v), want %q", what, id, ev.ID, ev.Payload.PersonName, err, want[id])
		}
	}
	for id := range want {
		v, err := s.Log.Get(id)
		if err != nil {
			t.Fatalf("get %d: %v", id, err)
		}
		_, _, _, js, err := eventlog.SplitValue(v)
		if err != nil {
			t.Fatalf("record %d: %v", id, err)
		}
		check("stored record", id, js)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(published) != len(want) {
		t.Fatalf("%d entries published, %d appended", len(published), len(want))
	}
	for _, e := range published {
		check("published entry", e.ID, e.JSON)
	}
	// The covering source index holds a copy of every record: verify
	// compares each with the log.
	verifyClean(t, s.Log)
}
