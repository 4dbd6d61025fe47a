package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/nilcheck"
	"github.com/securevision/events/internal/vocab"
)

// Appender is what a Service needs of the log of record: an atomic,
// durable append that assigns the ids (eventlog.RecordLog's Append, whose
// contract it keeps). *eventlog.Log implements it. It is called once per
// batch, never per event.
type Appender interface {
	// Append appends recs atomically and returns their ids once they are
	// durable. It keeps no reference to recs or their bytes.
	Append(ctx context.Context, recs []eventlog.Record) (first, last uint64, err error)
}

// Options configure a Service.
type Options struct {
	// Log is the log the events are appended to; required.
	Log Appender
	// Lists fills list_match for plates that arrive without one; nil
	// leaves it null.
	Lists ListMatcher
	// Now supplies ts_ms for events that carry none; nil is time.Now.
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Validate reports missing required options.
func (o Options) Validate() error {
	if nilcheck.IsNil(o.Log) {
		return errors.New("ingest: Options.Log is required")
	}
	return nil
}

// Service is the one append path (it implements Sink).
type Service struct {
	opts Options
	// lists is Options.Lists until SetLists replaces it (opts.Lists is
	// not read after New); nil when there are none.
	lists atomic.Pointer[ListMatcher]
	now   func() time.Time
	m     *ingestMetrics
}

// New creates the service.
func New(opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Service{opts: opts, now: opts.Now, m: newIngestMetrics(opts.Registerer)}
	if s.now == nil {
		s.now = time.Now
	}
	s.SetLists(opts.Lists)
	return s, nil
}

// SetLists installs the watchlists (they may be created after the
// service); nil removes them. It is safe while appends run: each append
// reads the lists once, so one batch is matched against one set of them.
func (s *Service) SetLists(l ListMatcher) {
	if l == nil {
		s.lists.Store(nil)
		return
	}
	s.lists.Store(&l)
}

// ErrUnavailable wraps log failures: the store cannot take the batch (HTTP
// 503). The batch was not acknowledged and is stored whole or not at all:
// one whose fsync failed may have reached the disk and come back after a
// restart (eventlog's sticky error), so a caller that retries may store it
// twice.
var ErrUnavailable = errors.New("ingest: store unavailable")

// Append checks evs (1 to MaxItems of them, each passing Validate) and
// appends them atomically (Sink): the entry for events nobody has checked.
func (s *Service) Append(ctx context.Context, evs []Event) (Result, error) {
	if len(evs) == 0 {
		return Result{}, &ValidationError{Errors: []vocab.FieldError{{Loc: []any{"body"}, Msg: "List should have at least 1 item after validation, not 0", Type: "too_short"}}}
	}
	if len(evs) > vocab.MaxItems {
		return Result{}, &TooLargeError{Msg: fmt.Sprintf("%d items in one request, the limit is %d", len(evs), vocab.MaxItems)}
	}
	if err := Validate(evs); err != nil {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return Result{}, err
	}
	return s.AppendValidated(ctx, evs)
}

// AppendValidated appends evs atomically without checking them: the
// caller guarantees that they passed Validate, directly or through Decode
// (whose nil error means the batch is valid), and that there are 1 to
// MaxItems of them. Anything else must go through Append.
func (s *Service) AppendValidated(ctx context.Context, evs []Event) (Result, error) {
	now := s.now().UnixMilli()
	size := 0
	for i := range evs {
		size += 160 + len(evs[i].Source)
		if evs[i].Face != nil {
			size += len(evs[i].Face.PersonName)
		}
		for _, x := range evs[i].Extra {
			size += len(x) + 16
		}
	}
	// One buffer for every record's JSON parts, reused across requests:
	// Append copies what it stores and keeps neither after it returns.
	sc := appendScratchPool.Get().(*appendScratch)
	buf := slices.Grow(sc.buf[:0], size)
	recs := slices.Grow(sc.recs[:0], len(evs))[:len(evs)]
	defer func() {
		sc.buf, sc.recs = buf, recs // keep what grew
		sc.release()
	}()
	var lists ListMatcher
	if l := s.lists.Load(); l != nil {
		lists = *l
	}
	var faces, plates int
	for i := range evs {
		ev := &evs[i]
		if ev.TsMs == 0 {
			ev.TsMs = now
		}
		if p := ev.Plate; p != nil && !p.ListMatchSet && lists != nil {
			p.ListMatch = lists.Match(p.PlateText)
		}
		typ := vocab.TypeCode(ev.Type)
		if typ == vocab.FaceMatchCode {
			faces++
		} else {
			plates++
		}
		h := len(buf)
		buf = appendHead(buf, ev)
		t := len(buf)
		buf = appendTail(buf, ev)
		recs[i] = eventlog.Record{
			Type: typ, TsMs: ev.TsMs, Source: ev.Source,
			Head: buf[h:t:t], Tail: buf[t:len(buf):len(buf)],
			Blob: ev.Snapshot,
		}
	}
	first, last, err := s.opts.Log.Append(ctx, recs)
	if err != nil {
		s.m.rejected.WithLabelValues("store").Inc()
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.m.appended.WithLabelValues(TypeFace).Add(float64(faces))
	s.m.appended.WithLabelValues(TypePlate).Add(float64(plates))
	s.m.items.Observe(float64(len(evs)))
	return Result{Count: len(evs), FirstID: first, LastID: last}, nil
}

// appendScratch is AppendValidated's reusable buffer of record parts and
// its record slice. Pooled because a 1000-event request fills about 250
// KiB of them, and allocating those afresh per request kept the garbage
// collector cycling under batch ingest.
type appendScratch struct {
	buf  []byte
	recs []eventlog.Record
}

// maxScratchBytes and maxScratchRecs bound what a pooled appendScratch
// keeps: one unusually large request does not pin its buffers.
const (
	maxScratchBytes = 1 << 20
	maxScratchRecs  = 4096
)

var appendScratchPool = sync.Pool{New: func() any { return new(appendScratch) }}

// release returns sc to the pool unless it grew past the bounds. The
// records are cleared first: they reference the events' sources and
// snapshots, which the pool must not keep alive.
func (sc *appendScratch) release() {
	if cap(sc.buf) > maxScratchBytes || cap(sc.recs) > maxScratchRecs {
		return
	}
	clear(sc.recs)
	appendScratchPool.Put(sc)
}
