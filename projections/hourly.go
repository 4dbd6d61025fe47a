package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Hourly is the projection behind GET /stats/hourly: detections per hour
// (UTC hours of ts_ms) and per source (frame_source_id) over the last
// HourlyWindow hours, kept in memory and never persisted.
//
// # The data
//
// Buckets are keyed by hour number (ts_ms / HourMs, floored) and, within
// an hour, by source; each holds one count per detection type code
// (vocab.IsDetection: operator actions such as corrections are not camera
// activity and are not counted). Hours older than the window are dropped;
// hours up to hourlyAhead in the future are kept, so an event from a
// camera whose clock runs ahead is counted once its hour comes into the
// window. Anything further off is not counted.
//
// # Feeding and rebuilding
//
// Committed takes every durable batch from the commit bus (core.Subscribe;
// it must be subscribed before the first Counts call). The counts of what
// was stored before are rebuilt from the store, lazily: the first Counts
// call (or Invalidate) records the committed watermark W, and a background
// scan reads the records with ids <= W whose block the zone map says may
// hold a ts_ms inside the window (a block whose max_ts is older is
// skipped without being read); Committed counts only ids > W from then
// on. Each id is counted once: the watermark covers a batch before the
// bus delivers it, so a batch whose ids are <= W reaches Committed only to
// be skipped, and one with ids > W is not visible to the scan. Until the
// scan is merged, Counts answers what it has with Complete false.
// Lazy, because a server whose dashboard nobody opens should not read a
// day of records at every start.
//
// # Deletions
//
// Retention deletes only events older than a whole number of days, which
// lie before the oldest hour of the window, so it never changes a count
// here. Anything else that deletes recent events (erasure) calls
// Invalidate, which discards the counts and rebuilds them as at start.
//
// # Concurrency
//
// mu guards the buckets and the rebuild state and is held for memory
// operations only; the scan reads the store without it and merges its
// result under it. Committed runs on the commit goroutine and only takes
// mu.
type Hourly struct {
	log    eventlog.RecordLog
	view   *View
	now    func() time.Time
	logger *slog.Logger

	mu struct {
		sync.Mutex
		hours map[int64]map[string]*hourCounts
		// from: ids <= from are the scan's; Committed counts the others.
		// ^0 before the first rebuild starts (everything is the scan's).
		from uint64
		// gen numbers rebuilds; a scan merges only if it is still the
		// latest. started: a rebuild has been started; complete: the
		// latest one was merged.
		gen      uint64
		started  bool
		complete bool
		// scanErr is the last scan's failure, reported by Counts.
		scanErr error
		// done is closed when the latest rebuild's scan ends (Wait).
		done chan struct{}
	}
}

type hourCounts [vocab.MaxTypeCode + 1]uint64

const (
	// HourMs is one bucket.
	HourMs = int64(time.Hour / time.Millisecond)
	// HourlyWindow is the number of hours Counts reports, the current
	// one included.
	HourlyWindow = vocab.StatsHours
	// hourlyAhead hours of future-stamped events are kept (camera clock
	// skew), the same span as the window.
	hourlyAhead = 24
)

// HourlyOptions configure NewHourly.
type HourlyOptions struct {
	// Log and View are the core's (core.Core.Log and View).
	Log  eventlog.RecordLog
	View *View
	// Now is the clock that places the window; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// NewHourly builds the projection. Subscribe its Committed to the commit
// bus before anything calls Counts.
func NewHourly(o HourlyOptions) (*Hourly, error) {
	if o.Log == nil || o.View == nil {
		return nil, errors.New("projections: NewHourly needs Log and View")
	}
	h := &Hourly{log: o.Log, view: o.View, now: o.Now, logger: o.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	h.mu.hours = map[int64]map[string]*hourCounts{}
	h.mu.from = ^uint64(0)
	return h, nil
}

// Committed counts a durable batch's detections (the commit-bus
// subscriber). It never blocks on I/O.
func (h *Hourly) Committed(b eventlog.Batch) {
	cur := floorDiv(h.now().UnixMilli(), HourMs)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Type == vocab.ErasureCode && h.mu.started {
			// An erasure deleted detections anywhere in the window: the
			// counts are rebuilt from the store.
			h.startLocked()
			return
		}
		if e.ID > h.mu.from {
			h.addLocked(e.Type, e.TsMs, e.Source, cur, 1)
		}
	}
	h.pruneLocked(cur)
}

func (h *Hourly) addLocked(typ uint8, ts int64, src string, cur int64, n uint64) {
	if !vocab.IsDetection(typ) || int(typ) >= len(hourCounts{}) {
		return
	}
	hr := floorDiv(ts, HourMs)
	if hr <= cur-HourlyWindow || hr > cur+hourlyAhead {
		return
	}
	m := h.mu.hours[hr]
	if m == nil {
		m = map[string]*hourCounts{}
		h.mu.hours[hr] = m
	}
	c := m[src]
	if c == nil {
		c = new(hourCounts)
		m[src] = c
	}
	c[typ] += n
}

func (h *Hourly) pruneLocked(cur int64) {
	for hr := range h.mu.hours {
		if hr <= cur-HourlyWindow {
			delete(h.mu.hours, hr)
		}
	}
}

// Invalidate discards the counts and rebuilds them from the store in the
// background (after deletions of recent events).
func (h *Hourly) Invalidate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.startLocked()
}

// startLocked starts a rebuild: clear, move the boundary to the
// watermark, scan below it.
func (h *Hourly) startLocked() {
	h.mu.gen++
	h.mu.started, h.mu.complete, h.mu.scanErr = true, false, nil
	clear(h.mu.hours)
	h.mu.from = h.log.LastID()
	done := make(chan struct{})
	h.mu.done = done
	go h.scan(h.mu.gen, h.mu.from, done)
}

// scan counts the records with ids <= to whose block may hold a ts_ms in
// the window, and merges the result if no newer rebuild started.
func (h *Hourly) scan(gen, to uint64, done chan struct{}) {
	defer close(done)
	start := time.Now()
	cur := floorDiv(h.now().UnixMilli(), HourMs)
	lo := (cur - HourlyWindow + 1) * HourMs
	local := &Hourly{now: h.now}
	local.mu.hours = map[int64]map[string]*hourCounts{}
	n, err := h.scanBlocks(lo, to, func(typ uint8, ts int64, src []byte) {
		local.addLocked(typ, ts, string(src), cur, 1)
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.mu.gen {
		return
	}
	if err != nil {
		h.mu.scanErr = err
		h.logger.Error("hourly stats: rebuild failed", "err", err)
		return
	}
	now := floorDiv(h.now().UnixMilli(), HourMs)
	for hr, m := range local.mu.hours {
		for src, c := range m {
			for typ, k := range c {
				if k > 0 {
					h.addLocked(uint8(typ), hr*HourMs, src, now, k)
				}
			}
		}
	}
	h.pruneLocked(now)
	h.mu.complete = true
	h.logger.Info("hourly stats rebuilt", "records", n, "took", time.Since(start).String())
}

// scanBlocks calls fn for every record with id <= to in a block whose
// summary says it may hold a ts_ms >= lo, and returns how many it read.
func (h *Hourly) scanBlocks(lo int64, to uint64, fn func(typ uint8, ts int64, src []byte)) (int, error) {
	var blocks []uint64
	h.view.mu.RLock()
	for i, z := range h.view.mu.zones {
		if z.live > 0 && z.max >= lo {
			blocks = append(blocks, h.view.mu.base+uint64(i))
		}
	}
	h.view.mu.RUnlock()
	n := 0
	// Consecutive blocks are read with one iterator.
	for i := 0; i < len(blocks); {
		j := i + 1
		for j < len(blocks) && blocks[j] == blocks[j-1]+1 {
			j++
		}
		from, last := blocks[i]*blockSize, (blocks[j-1]+1)*blockSize-1
		i = j
		if from > to {
			break
		}
		it, err := h.log.NewLogIter(from, min(last, to))
		if err != nil {
			return n, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			typ, ts, src, _, err := eventlog.SplitValue(it.Value())
			if err != nil {
				it.Close()
				return n, fmt.Errorf("record %d: %w", eventlog.KeyID(it.Key()), err)
			}
			if ts >= lo {
				fn(typ, ts, src)
			}
			n++
		}
		if err := it.Close(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Wait blocks until the current rebuild (if any) has ended or ctx is
// done.
func (h *Hourly) Wait(ctx context.Context) error {
	h.mu.Lock()
	done := h.mu.done
	h.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HourlyCounts is what Counts answers.
type HourlyCounts struct {
	// StartMs is the start of the oldest hour; hour i of Counts starts at
	// StartMs + i*HourMs.
	StartMs int64
	// Sources are the sources with at least one counted event, by total
	// (descending), then name.
	Sources []SourceCounts
	// Complete is false while the counts of stored events are being
	// rebuilt (they are then partial).
	Complete bool
	// Err is the rebuild's failure, if it failed (the counts are then
	// partial until Invalidate succeeds).
	Err error
}

// SourceCounts is one source's events per hour.
type SourceCounts struct {
	Source string
	Counts [HourlyWindow]uint64
	Total  uint64
}

// Counts reports the window's counts, of one detection type (a code) or
// of all (typ 0). The first call starts the rebuild from the store.
func (h *Hourly) Counts(typ uint8) HourlyCounts {
	cur := floorDiv(h.now().UnixMilli(), HourMs)
	first := cur - HourlyWindow + 1
	h.mu.Lock()
	if !h.mu.started {
		h.startLocked()
	}
	h.pruneLocked(cur)
	bySrc := map[string]*SourceCounts{}
	for hr, m := range h.mu.hours {
		if hr < first || hr > cur {
			continue
		}
		for src, c := range m {
			var k uint64
			if typ != 0 {
				if int(typ) < len(c) {
					k = c[typ]
				}
			} else {
				for _, x := range c {
					k += x
				}
			}
			if k == 0 {
				continue
			}
			s := bySrc[src]
			if s == nil {
				s = &SourceCounts{Source: src}
				bySrc[src] = s
			}
			s.Counts[hr-first] += k
			s.Total += k
		}
	}
	out := HourlyCounts{StartMs: first * HourMs, Complete: h.mu.complete, Err: h.mu.scanErr}
	h.mu.Unlock()
	out.Sources = make([]SourceCounts, 0, len(bySrc))
	for _, s := range bySrc {
		out.Sources = append(out.Sources, *s)
	}
	slices.SortFunc(out.Sources, func(a, b SourceCounts) int {
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Compare(a.Source, b.Source)
	})
	return out
}
