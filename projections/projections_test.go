package projections_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

type ev struct {
	ID     uint64 `json:"id"`
	Type   string `json:"type"`
	TsMs   int64  `json:"ts_ms"`
	Source string `json:"frame_source_id"`
}

func query(t *testing.T, v *projections.View, q projections.Query) ([]ev, projections.Page) {
	t.Helper()
	body, pg, err := v.Query(q, nil)
	if err != nil {
		t.Fatalf("query %+v: %v", q, err)
	}
	var out []ev
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("query body is not a JSON array: %v: %s", err, body)
	}
	if len(out) != pg.Count {
		t.Fatalf("page count %d, body has %d", pg.Count, len(out))
	}
	return out, pg
}

// allPages follows q's cursor through every page and returns the events
// in page order.
func allPages(t *testing.T, v *projections.View, q projections.Query) []ev {
	t.Helper()
	var out []ev
	for pages := 0; ; pages++ {
		es, pg := query(t, v, q)
		out = append(out, es...)
		if !pg.More {
			return out
		}
		if q.Asc {
			q.After = pg.Cursor
		} else {
			q.Before = pg.Cursor
		}
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
	}
}

func ids(es []ev) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func verifyClean(t *testing.T, l *eventlog.Log) *projections.VerifyReport {
	t.Helper()
	rep, err := projections.Verify(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("verify:\n%s", strings.Join(rep.Problems, "\n"))
	}
	return rep
}

// TestQueryMatchesBruteForce compares every filter combination with a
// filter over all events, in both directions and across many pages.
func TestQueryMatchesBruteForce(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	base := int64(1_700_000_000_000)
	var all []ev
	var batch []ingest.Event
	for i := 0; i < 5000; i++ {
		src := fmt.Sprintf("cam-%d", i%7)
		// Mostly increasing time with some late (out-of-order) events.
		ts := base + int64(i)*1000
		if i%97 == 0 {
			ts -= 3_000_000
		}
		e := storetest.Face(src, ts, "p")
		typ := "face_match"
		if i%3 == 0 {
			e = storetest.Plate(src, ts, "ABC")
			typ = "plate_read"
		}
		batch = append(batch, e)
		all = append(all, ev{ID: uint64(i + 1), Type: typ, TsMs: ts, Source: src})
		if len(batch) == 500 {
			s.Append(t, batch...)
			batch = nil
		}
	}
	cases := []projections.Query{
		{Limit: 100},
		{Limit: 100, Asc: true},
		{Limit: 37, Type: vocab.PlateReadCode},
		{Limit: 50, Source: "cam-3"},
		{Limit: 50, Source: "cam-3", Type: vocab.FaceMatchCode, Asc: true},
		{Limit: 20, HasSince: true, Since: base + 4_000_000},
		{Limit: 20, HasSince: true, Since: base + 1_000_000, HasUntil: true, Until: base + 1_500_000, Asc: true},
		{Limit: 200, HasUntil: true, Until: base + 10_000},
		{Limit: 10, Type: vocab.PlateReadCode, HasSince: true, Since: base + 100_000, Source: "cam-1"},
		{Limit: 1000, After: 4990, Asc: true},
		{Limit: 10, Before: 3},
		{Limit: 10, Source: "nope"},
	}
	// The second round empties every other source index entry, as a store
	// written before the source index was covering has them: those records
	// come from the log, the others from the index's copies.
	for round, name := range []string{"covering", "half uncovered"} {
		if round == 1 {
			err := s.Log.Update(context.Background(), func(tx *eventlog.Tx) error {
				for _, e := range all {
					if e.ID%2 == 1 {
						k := append(append([]byte{'I', 's'}, e.Source...), 0)
						if err := tx.Set(binary.BigEndian.AppendUint64(k, e.ID), nil); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep := verifyClean(t, s.Log); rep.UncoveredSource != 2500 {
				t.Fatalf("verify counts %d uncovered source entries, want 2500", rep.UncoveredSource)
			}
		}
		for _, q := range cases {
			t.Run(name+fmt.Sprintf("/%+v", q), func(t *testing.T) {
				var want []uint64
				for _, e := range all {
					if q.Type != 0 && vocab.TypeCode(e.Type) != q.Type ||
						q.Source != "" && e.Source != q.Source ||
						q.HasSince && e.TsMs <= q.Since || q.HasUntil && e.TsMs > q.Until ||
						e.ID <= q.After || q.Before > 0 && e.ID >= q.Before {
						continue
					}
					want = append(want, e.ID)
				}
				if !q.Asc {
					for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
						want[i], want[j] = want[j], want[i]
					}
				}
				// Walk all pages with the cursor.
				es := allPages(t, s.View, q)
				for _, e := range es {
					if e.ID < 1 || e.ID > uint64(len(all)) || e != all[e.ID-1] {
						t.Fatalf("event %+v, stored as %+v", e, all[min(max(e.ID, 1), uint64(len(all)))-1])
					}
				}
				got := ids(es)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got %d ids, want %d\n got %v\nwant %v", len(got), len(want), head(got), head(want))
				}
			})
		}
	}
	// Reverse writes the same page in the other order.
	fwd, _ := query(t, s.View, projections.Query{Limit: 5, After: 10, Asc: true})
	rev, _ := query(t, s.View, projections.Query{Limit: 5, After: 10, Asc: true, Reverse: true})
	if fmt.Sprint(ids(fwd)) != "[11 12 13 14 15]" || fmt.Sprint(ids(rev)) != "[15 14 13 12 11]" {
		t.Fatalf("reverse: %v / %v", ids(fwd), ids(rev))
	}
}

// TestSourceKeysOnly: with SourceKeysOnly the source index holds keys only
// (verify counts them as uncovered) and source pages, read from the log,
// are the same as from a covering index.
func TestSourceKeysOnly(t *testing.T) {
	now := time.Now().UnixMilli()
	var pages []string
	for _, keysOnly := range []bool{false, true} {
		s := storetest.Open(t, storetest.Options{SourceKeysOnly: keysOnly})
		var evs []ingest.Event
		for i := range 300 {
			evs = append(evs, storetest.Face(fmt.Sprintf("cam-%d", i%3), now+int64(i), fmt.Sprint("p", i)))
		}
		s.Append(t, evs...)
		rep := verifyClean(t, s.Log)
		if want := map[bool]uint64{false: 0, true: 300}[keysOnly]; rep.UncoveredSource != want {
			t.Fatalf("keysOnly=%v: %d uncovered source entries, want %d", keysOnly, rep.UncoveredSource, want)
		}
		for _, asc := range []bool{false, true} {
			body, pg, err := s.View.Query(projections.Query{Source: "cam-1", Limit: 60, Asc: asc}, nil)
			if err != nil || pg.Count != 60 {
				t.Fatalf("keysOnly=%v asc=%v: %d events, %v", keysOnly, asc, pg.Count, err)
			}
			// The stores were written at different times: compare all but
			// created_at.
			var items []map[string]any
			if err := json.Unmarshal(body, &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				delete(it, "created_at")
			}
			b, _ := json.Marshal(items)
			pages = append(pages, string(b))
		}
	}
	if pages[0] != pages[2] || pages[1] != pages[3] {
		t.Fatal("source pages differ between a covering and a keys-only source index")
	}
}

func head(x []uint64) []uint64 {
	if len(x) > 20 {
		return x[:20]
	}
	return x
}

// TestRetentionPrefixUsesRangeDeletions trims a large expired prefix and
// checks that it wrote a handful of range deletions and no point deletes.
func TestRetentionPrefixUsesRangeDeletions(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now()
	old := now.Add(-40 * 24 * time.Hour).UnixMilli()
	for b := 0; b < 20; b++ {
		evs := make([]ingest.Event, 1000)
		for i := range evs {
			evs[i] = storetest.Plate(fmt.Sprintf("cam-%d", i%5), old+int64(b*1000+i), "OLD1")
			evs[i].Snapshot = nil
		}
		s.Append(t, evs...)
	}
	fresh := s.Append(t, storetest.Face("cam-0", now.UnixMilli(), "new"), storetest.Plate("cam-9", now.UnixMilli(), "NEW"))
	cutoff := now.Add(-30 * 24 * time.Hour).UnixMilli()
	n, err := s.View.Cleanup(context.Background(), cutoff)
	if err != nil {
		t.Fatal(err)
	}
	st := s.View.LastCleanup()
	if n != 20000 {
		t.Fatalf("deleted %d, want 20000", n)
	}
	if st.PointDeletes != 0 {
		t.Fatalf("prefix trim wrote %d point deletions", st.PointDeletes)
	}
	// log + snapshots + 6 types + 6 sources + time index + summaries +
	// the one plate's history.
	if st.RangeDeletes == 0 || st.RangeDeletes > 20 {
		t.Fatalf("prefix trim wrote %d range deletions, want a handful", st.RangeDeletes)
	}
	if first := s.Log.State().First; first != fresh.FirstID {
		t.Fatalf("low-water id %d, want %d", first, fresh.FirstID)
	}
	es, _ := query(t, s.View, projections.Query{Limit: 1000})
	if fmt.Sprint(ids(es)) != fmt.Sprint([]uint64{fresh.LastID, fresh.FirstID}) {
		t.Fatalf("after cleanup: %v", ids(es))
	}
	if _, err := s.Log.Get(1); err == nil {
		t.Fatal("expired event 1 still readable")
	}
	if s.View.Live() != 2 {
		t.Fatalf("live %d, want 2", s.View.Live())
	}
	verifyClean(t, s.Log)
}

// TestRetentionDeletesLateEvents: expired events behind fresh ones (late,
// back-filled) go too, found through the summaries, and nothing expired
// is returned afterwards by any query.
func TestRetentionDeletesLateEvents(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now()
	cutoff := now.Add(-30 * 24 * time.Hour).UnixMilli()
	old := cutoff - 1000
	var evs []ingest.Event
	wantLive := 0
	for i := 0; i < 3000; i++ {
		ts := now.UnixMilli() - int64(i)
		if i%250 == 7 {
			ts = old - int64(i) // a back-filled expired event
		} else {
			wantLive++
		}
		evs = append(evs, storetest.Face(fmt.Sprintf("cam-%d", i%4), ts, "x"))
	}
	// A leading expired prefix too.
	s.Append(t, storetest.Face("cam-0", old, "first"), storetest.Face("cam-0", old, "second"))
	s.Append(t, evs...)
	n, err := s.View.Cleanup(context.Background(), cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3000 - wantLive + 2; n != want {
		t.Fatalf("deleted %d, want %d", n, want)
	}
	if st := s.View.LastCleanup(); st.PointDeletes == 0 {
		t.Fatal("late events were not deleted individually")
	}
	for _, q := range []projections.Query{
		{Limit: 1000, Asc: true}, {Limit: 1000, HasUntil: true, Until: cutoff}, {Limit: 1000, Source: "cam-3"}, {Limit: 1000, Type: vocab.FaceMatchCode},
	} {
		es := allPages(t, s.View, q)
		for _, e := range es {
			if e.TsMs < cutoff {
				t.Fatalf("query %+v returned expired event %d", q, e.ID)
			}
		}
		if total := len(es); q.Source == "" && q.Type != 0 && total != wantLive {
			t.Fatalf("%d face events remain, want %d", total, wantLive)
		}
	}
	if got := s.View.Live(); got != uint64(wantLive) {
		t.Fatalf("live %d, want %d", got, wantLive)
	}
	verifyClean(t, s.Log)
	// A second cleanup finds nothing.
	if n, err := s.View.Cleanup(context.Background(), cutoff); err != nil || n != 0 {
		t.Fatalf("second cleanup = %d, %v", n, err)
	}
}

// TestCleanupRacesAppends: cleanups and appends interleave; verify stays
// clean and every fresh event survives.
func TestCleanupRacesAppends(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now()
	cutoff := now.Add(-time.Hour).UnixMilli()
	var wg sync.WaitGroup
	var fresh sync.Map
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ts := now.UnixMilli()
				if (i+w)%2 == 0 {
					ts = cutoff - 10
				}
				res := s.Append(t, storetest.Face("cam", ts, "x"), storetest.Plate("cam2", ts, "P1"))
				if ts >= cutoff {
					fresh.Store(res.FirstID, true)
					fresh.Store(res.LastID, true)
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if _, err := s.View.Cleanup(context.Background(), cutoff); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := s.View.Cleanup(context.Background(), cutoff); err != nil {
		t.Fatal(err)
	}
	fresh.Range(func(k, _ any) bool {
		if _, err := s.Log.Get(k.(uint64)); err != nil {
			t.Fatalf("fresh event %d lost: %v", k, err)
		}
		return true
	})
	rep := verifyClean(t, s.Log)
	if rep.Events != 400 {
		t.Fatalf("%d events remain, want 400", rep.Events)
	}
}

func TestRecentCountsRebuiltAtStart(t *testing.T) {
	dir := t.TempDir()
	s, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	s.Append(t, storetest.Face("a", now-1000, "x"), storetest.Face("a", now-2000, "y"), storetest.Plate("b", now, "P"),
		storetest.Plate("b", now-400_000, "OLD"))
	if r := s.View.Recent(); r.Face != 2 || r.Plate != 1 {
		t.Fatalf("recent %+v", r)
	}
	s.Log.Close()
	s2, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Log.Close()
	if r := s2.View.Recent(); r.Face != 2 || r.Plate != 1 {
		t.Fatalf("recent after restart %+v", r)
	}
	if s2.View.Live() != 4 {
		t.Fatalf("live after restart %d", s2.View.Live())
	}
}

// TestVerifyCatchesPlantedInconsistencies plants one fault at a time and
// checks that verify names it, without the false problems notWant lists.
func TestVerifyCatchesPlantedInconsistencies(t *testing.T) {
	plants := map[string]struct {
		plant   func(tx *eventlog.Tx) error
		want    string   // a problem reported contains it
		notWant []string // no problem contains these
	}{
		"index entry without record": {func(tx *eventlog.Tx) error {
			k := append([]byte{'I', 'y', vocab.FaceMatchCode}, 0, 0, 0, 0, 0, 0, 3, 0xE7)
			return tx.Set(k, nil)
		}, "which is not in the log", nil},
		"record without index entries": {func(tx *eventlog.Tx) error {
			return tx.Delete(append([]byte{'I', 'y', vocab.FaceMatchCode}, 0, 0, 0, 0, 0, 0, 0, 2))
		}, "type index has 2 valid entries for 3 records", nil},
		// Records 1 and 2 lie below the low-water id: that is the fault;
		// their index entries and block summary still agree with them.
		"record below low-water": {func(tx *eventlog.Tx) error {
			return tx.Set([]byte("Mlow"), []byte{0, 0, 0, 0, 0, 0, 0, 3})
		}, "below the low-water id 3", []string{"not in the log", "valid entries", "summary"}},
		"source index copy differs from its record": {func(tx *eventlog.Tx) error {
			v, err := tx.Get(eventlog.LogKey(2))
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint64([]byte{'I', 's', 'a', 0}, 2)
			return tx.Set(k, []byte(strings.Replace(string(v), `"y"`, `"Y"`, 1)))
		}, "source index entry", nil},
		"json id disagrees with key": {func(tx *eventlog.Tx) error {
			v, err := tx.Get(eventlog.LogKey(1))
			if err != nil {
				return err
			}
			return tx.Set(eventlog.LogKey(1), []byte(strings.Replace(string(v), `{"id":1,`, `{"id":7,`, 1)))
		}, `does not start with {"id":1,`, nil},
	}
	for name, tc := range plants {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := storetest.OpenErr(dir, storetest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UnixMilli()
			s.Append(t, storetest.Face("a", now, "x"), storetest.Face("a", now, "y"), storetest.Face("a", now, "z"))
			verifyClean(t, s.Log)
			if err := s.Log.Update(context.Background(), tc.plant); err != nil {
				t.Fatal(err)
			}
			s.Log.Close()
			l, err := eventlog.Open(eventlog.Options{URL: dir, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			rep, err := projections.Verify(l)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) == 0 {
				t.Fatal("verify found nothing")
			}
			found := false
			for _, p := range rep.Problems {
				found = found || strings.Contains(p, tc.want)
				for _, bad := range tc.notWant {
					if strings.Contains(p, bad) {
						t.Errorf("false problem %q (all: %q)", p, rep.Problems)
					}
				}
			}
			if !found {
				t.Errorf("no problem mentions %q: %q", tc.want, rep.Problems)
			}
		})
	}
}

// TestVerifyChecksIdentityViews: verify reports a history entry under the
// wrong name, a missing one, and a correction entry without its records.
func TestVerifyChecksIdentityViews(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now().UnixMilli()
	res := s.Append(t, storetest.Plate("cam", now, "ABC123"), storetest.Face("cam", now, "Ann"))
	verifyClean(t, s.Log)
	// The layout of projections/doc.go: a hash of the name in the key,
	// the name in the value.
	hist := func(fam byte, name string, id uint64) []byte {
		h := sha256.Sum256([]byte(name))
		return binary.BigEndian.AppendUint64(append([]byte{eventlog.FamIndex, fam}, h[:16]...), id)
	}
	for _, tc := range []struct {
		name string
		tx   func(tx *eventlog.Tx) error
		want string
	}{
		{"wrong name", func(tx *eventlog.Tx) error {
			if err := tx.Delete(hist('h', "ABC123", res.FirstID)); err != nil {
				return err
			}
			v := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint64(nil, uint64(now)), 3)
			return tx.Set(hist('h', "XYZ", res.FirstID), append(v, "XYZcam"...))
		}, "disagrees with detection"},
		{"missing", func(tx *eventlog.Tx) error { return tx.Delete(hist('n', "Ann", res.LastID)) }, "valid entries for"},
		{"dangling correction", func(tx *eventlog.Tx) error {
			k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{eventlog.FamIndex, 'c'}, res.LastID), 999)
			return tx.Set(k, []byte(fmt.Sprintf(`{"id":999,"created_at":"x","person_name":"Bo","event_id":%d}`, res.LastID)))
		}, "names correction 999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.Open(t, storetest.Options{})
			res = s.Append(t, storetest.Plate("cam", now, "ABC123"), storetest.Face("cam", now, "Ann"))
			if err := s.Log.Update(context.Background(), tc.tx); err != nil {
				t.Fatal(err)
			}
			rep, err := projections.Verify(s.Log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Fatalf("verify did not report %q: %v", tc.want, rep.Problems)
			}
		})
	}
}

// TestDetectionPagesSkipActionRuns: a page of detections behind a long
// run of operators' actions is the right page, and the block summaries
// count detections exactly (verify).
func TestDetectionPagesSkipActionRuns(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now().UnixMilli()
	old := s.Append(t, storetest.Plate("cam", now, "OLD1"), storetest.Face("cam", now, "Ann"))
	for range 5 * 1024 / 64 {
		for range 64 {
			if _, err := s.Ingest.AppendAction(context.Background(), ingest.Action{Type: vocab.WatchlistChangeCode, TsMs: now,
				Source: vocab.OperatorSource, Payload: []byte(`{"op":"add","list":"blacklist","plate":"X1"}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := s.Append(t, storetest.Plate("cam", now, "NEW1"))
	for _, q := range []projections.Query{{Limit: 3}, {Limit: 3, Asc: true}, {Limit: 3, Type: vocab.PlateReadCode}} {
		es, _ := query(t, s.View, q)
		want := []uint64{fresh.FirstID, old.LastID, old.FirstID}
		if q.Type == vocab.PlateReadCode {
			want = []uint64{fresh.FirstID, old.FirstID}
		}
		if q.Asc {
			slices.Reverse(want)
		}
		if fmt.Sprint(ids(es)) != fmt.Sprint(want) {
			t.Fatalf("query %+v: %v, want %v", q, ids(es), want)
		}
	}
	verifyClean(t, s.Log)
}

// TestHistoriesBackfilledOnce: a store from before the histories (no
// entries, no version key) gets them when it is first opened, and verify
// is clean afterwards.
func TestHistoriesBackfilledOnce(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Open(t, storetest.Options{Dir: dir})
	now := time.Now().UnixMilli()
	s.Append(t, storetest.Plate("cam", now, "ABC123"), storetest.Face("cam", now, "Ann"), storetest.Plate("cam", now, "ABC123"))
	if err := s.Log.Update(context.Background(), func(tx *eventlog.Tx) error {
		for _, fam := range []byte{'h', 'n', 'v'} {
			if err := tx.DeleteRange([]byte{eventlog.FamIndex, fam}, []byte{eventlog.FamIndex, fam + 1}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Core.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.Open(t, storetest.Options{Dir: dir})
	a, err := s.View.Plate("ABC123")
	if err != nil || a.Count != 2 {
		t.Fatalf("ABC123 after the backfill: %+v, %v", a, err)
	}
	if p, _ := s.View.Person("Ann"); p.Count != 1 {
		t.Fatalf("Ann after the backfill: %+v", p)
	}
	verifyClean(t, s.Log)
}
