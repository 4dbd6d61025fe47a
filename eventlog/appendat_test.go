package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

func faceRecord(src, name string, ts int64) eventlog.Record {
	return eventlog.Record{
		Type: vocab.FaceMatchCode, TsMs: ts, Source: src,
		Head: fmt.Appendf(nil, `"type":"face_match","ts_ms":%d,"frame_source_id":%q`, ts, src),
		Tail: fmt.Appendf(nil, `"payload":{"person_name":%q,"similarity":0.9,"bbox":[1,2,3,4]}`, name),
	}
}

// AppendAt stores records at the ids it is given, gaps included, with
// their created_at clamped to never decrease; they reach the projections
// (queries, verify) and the commit bus like appended ones, and the hook's
// keys commit with them.
func TestAppendAtGivenIDsWithGaps(t *testing.T) {
	dir := t.TempDir()
	s := storetest.Open(t, storetest.Options{Dir: dir})
	var mu sync.Mutex
	var seen []uint64
	var created []int64
	s.Subscribe(func(b eventlog.Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Entries {
			seen = append(seen, e.ID)
			created = append(created, e.CreatedMs)
		}
	})
	ts := time.Now().UnixMilli()
	base := time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC).UnixMilli()
	recs := []eventlog.Record{faceRecord("cam", "a", ts), faceRecord("cam", "b", ts), faceRecord("cam2", "c", ts)}
	at := []eventlog.At{{ID: 3, CreatedMs: base}, {ID: 4, CreatedMs: base - 1000}, {ID: 9, CreatedMs: base + 7}}
	var hookFirst, hookLast uint64
	hook := func(w eventlog.Writer, first, last uint64) error {
		hookFirst, hookLast = first, last
		return w.Set([]byte("Rtest"), []byte("x"))
	}
	if err := s.Log.AppendAt(context.Background(), recs, at, 12, hook); err != nil {
		t.Fatal(err)
	}
	if hookFirst != 3 || hookLast != 9 {
		t.Fatalf("hook saw %d..%d, want 3..9", hookFirst, hookLast)
	}
	if got := s.Log.LastID(); got != 9 {
		t.Fatalf("LastID %d, want 9", got)
	}
	mu.Lock()
	if fmt.Sprint(seen) != "[3 4 9]" || created[1] != base || created[2] != base+7 {
		t.Fatalf("commit bus saw ids %v created %v", seen, created)
	}
	mu.Unlock()
	v, err := s.Log.Get(4)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, js, _ := eventlog.SplitValue(v)
	want := `{"id":4,"type":"face_match","ts_ms":` + fmt.Sprint(ts) + `,"frame_source_id":"cam","created_at":"2024-01-01T00:00:05.000Z","payload":{"person_name":"b","similarity":0.9,"bbox":[1,2,3,4]}}`
	if string(js) != want {
		t.Fatalf("record 4:\n got %s\nwant %s", js, want)
	}
	page, pg, err := s.View.Query(projections.Query{Limit: 10, Asc: true, Source: "cam"}, nil)
	if err != nil || pg.Count != 2 || !strings.Contains(string(page), `"id":3`) {
		t.Fatalf("source query: %s %+v %v", page, pg, err)
	}

	// Ids at or below through are refused; the records above go on.
	err = s.Log.AppendAt(context.Background(), recs[:1], []eventlog.At{{ID: 12, CreatedMs: base}}, 0, nil)
	if !errors.Is(err, eventlog.ErrOutOfOrder) {
		t.Fatalf("AppendAt at a used position: %v, want ErrOutOfOrder", err)
	}
	if err := s.Log.AppendAt(context.Background(), recs[:1], []eventlog.At{{ID: 2, CreatedMs: base}}, 0, nil); !errors.Is(err, eventlog.ErrOutOfOrder) {
		t.Fatalf("AppendAt below the last id: %v", err)
	}
	if err := s.Log.AppendAt(context.Background(), recs[:2], []eventlog.At{{ID: 20}, {ID: 20}}, 0, nil); !errors.Is(err, eventlog.ErrOutOfOrder) {
		t.Fatalf("AppendAt with repeated ids: %v", err)
	}
	// No records: the hook alone, and through moves.
	if err := s.Log.AppendAt(context.Background(), nil, nil, 15, hook); err != nil {
		t.Fatal(err)
	}
	if hookLast >= hookFirst {
		t.Fatalf("hook of an empty request saw %d..%d", hookFirst, hookLast)
	}
	if err := s.Log.AppendAt(context.Background(), recs[:1], []eventlog.At{{ID: 16, CreatedMs: base}}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Log.NewIter([]byte("Rtest"), []byte("Rtesu")); err != nil || !k.First() {
		t.Fatal("hook key not stored", err)
	} else {
		k.Close()
	}
	verifyClean(t, s.Log)

	// A plain Append continues above every position.
	res := s.Append(t, storetest.Face("cam", ts, "d"))
	if res.FirstID != 17 {
		t.Fatalf("Append after AppendAt got id %d, want 17", res.FirstID)
	}
	verifyClean(t, s.Log)
	if err := s.Core.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := storetest.Open(t, storetest.Options{Dir: dir})
	if got := s2.Log.LastID(); got != 17 {
		t.Fatalf("after reopen LastID %d", got)
	}
	if n, err := s2.View.Cleanup(context.Background(), ts+1); err != nil || n != 5 {
		t.Fatalf("cleanup deleted %d, %v; want 5", n, err)
	}
	verifyClean(t, s2.Log)
}
