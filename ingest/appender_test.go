package ingest

import (
	"context"
	"errors"
	"testing"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// fakeLog is an Appender without a store: it records what it was handed
// (copied, since the caller reuses the records) and answers with ids from
// next, or with err.
type fakeLog struct {
	next uint64
	err  error
	got  []eventlog.Record
}

func (f *fakeLog) Append(_ context.Context, recs []eventlog.Record) (uint64, uint64, error) {
	if f.err != nil {
		return 0, 0, f.err
	}
	for _, r := range recs {
		r.Head, r.Tail = append([]byte(nil), r.Head...), append([]byte(nil), r.Tail...)
		f.got = append(f.got, r)
	}
	first := f.next
	f.next += uint64(len(recs))
	return first, f.next - 1, nil
}

// The Service needs of the log only Appender: one Append per batch, whose
// ids it reports, and whose failure it reports as ErrUnavailable.
func TestServiceOverAppender(t *testing.T) {
	f := &fakeLog{next: 41}
	s, err := New(Options{Log: f})
	if err != nil {
		t.Fatal(err)
	}
	evs := []Event{
		{Type: vocab.FaceMatch, TsMs: 1704067200000, Source: "cam-1",
			Face: &Face{PersonName: "x", Similarity: 0.9, BBox: BBox{1, 2, 3, 4}}},
		{Type: vocab.PlateRead, TsMs: 1704067200001, Source: "cam-2",
			Plate: &Plate{PlateText: "P1", Confidence: 0.5, Region: "US-CA"}},
	}
	res, err := s.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Count: 2, FirstID: 41, LastID: 42}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if len(f.got) != 2 || f.got[0].Type != vocab.FaceMatchCode || f.got[0].Source != "cam-1" ||
		f.got[1].Type != vocab.PlateReadCode || f.got[1].TsMs != 1704067200001 {
		t.Errorf("appended %+v", f.got)
	}

	down := errors.New("disk on fire")
	f.err = down
	if _, err := s.Append(context.Background(), evs); !errors.Is(err, ErrUnavailable) || !errors.Is(err, down) {
		t.Errorf("failed append: %v, want ErrUnavailable wrapping %v", err, down)
	}
}
