package vision

import (
	"sort"
	"time"

	"github.com/securevision/events/ingest"
)

// deduper collapses repeated sightings of one person or plate on one source
// into one event per cooldown window (see the package doc). It is owned by
// one source goroutine and not safe for concurrent use. Time is the frame
// time in milliseconds, so the same rule holds for files processed faster
// than real time and for live streams.
type deduper struct {
	cooldownMs int64
	open       map[string]*window
	ready      []ingest.Event
}

type window struct {
	startMs int64
	score   float64
	best    ingest.Event
}

func newDeduper(cooldown time.Duration) *deduper {
	return &deduper{cooldownMs: cooldown.Milliseconds(), open: map[string]*window{}}
}

// offer records a sighting of key at tsMs with score. build is called only
// when the sighting is the best of its window so far, so the snapshot JPEG
// is encoded at most once per improvement rather than once per frame.
func (d *deduper) offer(key string, tsMs int64, score float64, build func() ingest.Event) {
	if d.cooldownMs < 0 {
		d.ready = append(d.ready, build())
		return
	}
	w, ok := d.open[key]
	if ok && tsMs >= w.startMs+d.cooldownMs {
		// The window closed before this sighting: emit it, open a new one.
		d.ready = append(d.ready, w.best)
		delete(d.open, key)
		ok = false
	}
	if !ok {
		d.open[key] = &window{startMs: tsMs, score: score, best: build()}
		return
	}
	if score > w.score {
		w.score, w.best = score, build()
	}
}

// expire returns the events of every window that has closed by nowMs
// (start + cooldown ≤ now), oldest window first.
func (d *deduper) expire(nowMs int64) []ingest.Event {
	var closed []*window
	for k, w := range d.open {
		if nowMs >= w.startMs+d.cooldownMs {
			closed = append(closed, w)
			delete(d.open, k)
		}
	}
	return d.take(closed)
}

// flush closes every window (end of a file, shutdown).
func (d *deduper) flush() []ingest.Event {
	closed := make([]*window, 0, len(d.open))
	for k, w := range d.open {
		closed = append(closed, w)
		delete(d.open, k)
	}
	return d.take(closed)
}

func (d *deduper) take(closed []*window) []ingest.Event {
	sort.Slice(closed, func(i, j int) bool {
		if closed[i].startMs != closed[j].startMs {
			return closed[i].startMs < closed[j].startMs
		}
		return closed[i].best.TsMs < closed[j].best.TsMs
	})
	out := d.ready
	d.ready = nil
	for _, w := range closed {
		out = append(out, w.best)
	}
	return out
}

// pending is the number of open windows.
func (d *deduper) pending() int { return len(d.open) }
