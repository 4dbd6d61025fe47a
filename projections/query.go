package projections

import (
	"encoding/binary"
	"errors"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Query selects events for GET /events. Results are in id order: ascending
// when Asc, else descending. Cursors are exclusive.
type Query struct {
	Type   uint8  // 0: the detections
	Source string // "": any
	// Plate and Person select a history: the reads of one normalised
	// plate, the face matches of one person, by their corrected values
	// (at most one of Source, Plate and Person).
	Plate, Person string
	HasSince      bool
	Since         int64 // exclusive, on ts_ms
	HasUntil      bool
	Until         int64 // inclusive, on ts_ms
	After         uint64
	Before        uint64 // 0: none
	Asc           bool
	// Reverse writes the page in the opposite order of travel (Asc still
	// decides which events are selected and the cursor).
	Reverse bool
	Limit   int
}

// Page describes what Query wrote.
type Page struct {
	Count int
	// Cursor is the id of the last event written (the next page's
	// exclusive cursor); 0 when the page is empty.
	Cursor uint64
	// More is true when the page is full: more may follow.
	More bool
}

// ErrBadQuery reports a query the caller should have validated.
var ErrBadQuery = errors.New("projections: invalid query")

// Query appends the matching events' stored JSON to dst as a JSON array
// and returns it. It reads stored bytes; nothing is decoded or re-encoded.
func (v *View) Query(q Query, dst []byte) ([]byte, Page, error) {
	var pg Page
	if q.Limit < 1 || q.Limit > vocab.MaxQueryLimit {
		return dst, pg, ErrBadQuery
	}
	if v.log == nil {
		return dst, pg, ErrNoLog
	}
	st := v.log.State()
	lo, hi := st.First, st.Last
	if q.After >= lo {
		lo = q.After + 1
	}
	if q.Before > 0 && q.Before-1 < hi {
		hi = q.Before - 1
	}
	dst = append(dst, '[')
	if lo == 0 || lo > hi || (q.HasSince && q.HasUntil && q.Until <= q.Since) {
		return append(dst, ']'), pg, nil
	}

	// The log iterator serves the records; an index iterator, when a
	// filter allows, says which ids to read.
	logIt, err := v.log.NewLogIter(lo, hi)
	if err != nil {
		return dst, pg, err
	}
	defer logIt.Close()
	// Plan: a source filter is selective (one camera among many), so its
	// index drives; the index holds a copy of each record (it covers the
	// query), so no record is read from the log. A type filter is not
	// selective (two types): reading the log in order and checking the
	// record header is cheaper than a seek per match, and keeps a typed
	// page within a small factor of an unfiltered one.
	//
	// Operators' actions (corrections, watchlist and gallery changes,
	// erasures) are rare among detections: a page of them is read through
	// the type index, one log seek per match, never by scanning the log.
	var idx *eventlog.Iter
	var idxKey func(id uint64) []byte
	covering := false
	switch {
	case q.Plate != "":
		idxKey = func(id uint64) []byte { return appendHistoryKey(nil, 'h', q.Plate, id) }
	case q.Person != "":
		idxKey = func(id uint64) []byte { return appendHistoryKey(nil, 'n', q.Person, id) }
	case q.Source != "":
		covering = true
		idxKey = func(id uint64) []byte { return sourceKey(q.Source, id) }
	case q.Type != 0 && !vocab.IsDetection(q.Type):
		idxKey = func(id uint64) []byte { return typeKey(q.Type, id) }
	}
	if idxKey != nil {
		idx, err = v.log.NewIter(idxKey(lo), idxKey(hi+1))
		if err != nil {
			return dst, pg, err
		}
		defer idx.Close()
	}
	decorate := v.hasCorrections()
	tsFilter := q.HasSince || q.HasUntil

	// match checks the predicates not implied by the driving iterator (a
	// source filter always drives through its index).
	match := func(val []byte) ([]byte, bool, error) {
		typ, ts, _, js, err := eventlog.SplitValue(val)
		if err != nil {
			return nil, false, err
		}
		if q.Type != 0 && typ != q.Type || q.Type == 0 && !vocab.IsDetection(typ) {
			return nil, false, nil
		}
		if (q.HasSince && ts <= q.Since) || (q.HasUntil && ts > q.Until) {
			return nil, false, nil
		}
		return js, true, nil
	}
	start := len(dst)
	var spans [][2]int // item offsets, only when Reverse
	emit := func(id uint64, js []byte) bool {
		if pg.Count > 0 {
			dst = append(dst, ',')
		}
		at := len(dst)
		if decorate {
			dst = v.Decorate(dst, id, js)
		} else {
			dst = append(dst, js...)
		}
		if q.Reverse {
			spans = append(spans, [2]int{at, len(dst)})
		}
		pg.Count++
		pg.Cursor = id
		return pg.Count >= q.Limit
	}

	// Walk candidate id ranges: the whole [lo, hi], or with a ts filter
	// only the blocks whose zone overlaps it.
	cur := lo
	if !q.Asc {
		cur = hi
	}
	// A scan of the log for detections skips the blocks that hold none
	// (zone det == 0): a run of operators' actions costs one summary per
	// block, not a read per record.
	detOnly := idx == nil && (q.Type == 0 || vocab.IsDetection(q.Type))
	for {
		a, b, ok := v.nextRange(q, cur, lo, hi, tsFilter, detOnly)
		if !ok {
			break
		}
		full, err := v.scanRange(q, a, b, logIt, idx, idxKey, covering, match, emit)
		if err != nil {
			return dst, pg, err
		}
		if full {
			pg.More = true
			break
		}
		if q.Asc {
			if b >= hi {
				break
			}
			cur = b + 1
		} else {
			if a <= lo {
				break
			}
			cur = a - 1
		}
	}
	if q.Reverse && len(spans) > 1 {
		items := append([]byte(nil), dst[start:]...)
		dst = dst[:start]
		for i := len(spans) - 1; i >= 0; i-- {
			if i < len(spans)-1 {
				dst = append(dst, ',')
			}
			dst = append(dst, items[spans[i][0]-start:spans[i][1]-start]...)
		}
	}
	return append(dst, ']'), pg, nil
}

// maxMerge bounds how many adjacent blocks one candidate range spans, so
// that the newest page of a large store reads a few summaries, not all.
const maxMerge = 16

// nextRange returns the next candidate id range [a, b] from cur in the
// query's direction, within [lo, hi].
func (v *View) nextRange(q Query, cur, lo, hi uint64, tsFilter, detOnly bool) (a, b uint64, ok bool) {
	if cur < lo || cur > hi {
		return 0, 0, false
	}
	if !tsFilter && !detOnly {
		if q.Asc {
			return cur, hi, true
		}
		return lo, cur, true
	}
	overlaps := func(z zone) bool {
		return z.live > 0 && (!detOnly || z.det > 0) && (!q.HasSince || z.max > q.Since) && (!q.HasUntil || z.min <= q.Until)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	blk := cur / blockSize
	if q.Asc {
		for ; blk*blockSize <= hi; blk++ {
			if overlaps(v.zoneAtLocked(blk)) {
				break
			}
		}
		if blk*blockSize > hi {
			return 0, 0, false
		}
		a = max(blk*blockSize, cur)
		// Merge following overlapping blocks into one range (a bounded
		// run: a page rarely needs more, and the next call goes on).
		for n := 0; n < maxMerge && blk+1 <= hi/blockSize && overlaps(v.zoneAtLocked(blk+1)); n++ {
			blk++
		}
		return a, min(blk*blockSize+blockSize-1, hi), true
	}
	for {
		if overlaps(v.zoneAtLocked(blk)) {
			break
		}
		if blk == 0 || blk*blockSize <= lo {
			return 0, 0, false
		}
		blk--
	}
	b = min(blk*blockSize+blockSize-1, cur)
	for n := 0; n < maxMerge && blk > 0 && (blk-1)*blockSize+blockSize-1 >= lo && overlaps(v.zoneAtLocked(blk-1)); n++ {
		blk--
	}
	return max(blk*blockSize, lo), b, true
}

// scanRange emits the matches with ids in [a, b] in the query's order. It
// returns true when the page filled up.
func (v *View) scanRange(q Query, a, b uint64, logIt, idx *eventlog.Iter, idxKey func(uint64) []byte, covering bool,
	match func([]byte) ([]byte, bool, error), emit func(uint64, []byte) bool) (bool, error) {
	if idx == nil {
		var ok bool
		if q.Asc {
			ok = logIt.SeekGE(eventlog.LogKey(a))
		} else {
			ok = logIt.SeekLT(eventlog.LogKey(b + 1))
		}
		for ; ok; ok = step(logIt, q.Asc) {
			id := eventlog.KeyID(logIt.Key())
			if id < a || id > b {
				break
			}
			js, m, err := match(logIt.Value())
			if err != nil {
				return false, err
			}
			if m && emit(id, js) {
				return true, nil
			}
		}
		return false, logIt.Error()
	}
	// The source index covers its records: each entry's value is a copy of
	// the record, so a source page is one sequential read of the index, in
	// either direction. Entries written before the index was covering, and
	// the type index's, have an empty value; their records are read from
	// the log.
	var ok bool
	if q.Asc {
		ok = idx.SeekGE(idxKey(a))
	} else {
		ok = idx.SeekLT(idxKey(b + 1))
	}
	for ; ok; ok = step(idx, q.Asc) {
		k := idx.Key()
		id := binary.BigEndian.Uint64(k[len(k)-8:])
		if id < a || id > b {
			break
		}
		val := idx.Value()
		if !covering || len(val) == 0 {
			if !seekLog(logIt, id, q.Asc) {
				// Index entry without record: only possible above the
				// committed watermark (bounded out) or in a corrupt store.
				continue
			}
			val = logIt.Value()
		}
		js, m, err := match(val)
		if err != nil {
			return false, err
		}
		if m && emit(id, js) {
			return true, nil
		}
	}
	return false, idx.Error()
}

func step(it *eventlog.Iter, asc bool) bool {
	if asc {
		return it.Next()
	}
	return it.Prev()
}

// stepLimit is how far seekLog steps the log iterator before it seeks:
// dense matches (a busy camera) are a few records apart, and stepping over
// them is cheaper than a seek, which searches every level again.
const stepLimit = 16

// seekLog positions it at record id, stepping from the current position
// when id is close ahead in the direction of travel, seeking otherwise.
func seekLog(it *eventlog.Iter, id uint64, asc bool) bool {
	if it.Valid() {
		cur := eventlog.KeyID(it.Key())
		if asc && cur < id && id-cur <= stepLimit {
			for it.Next() {
				if c := eventlog.KeyID(it.Key()); c >= id {
					return c == id
				}
			}
			return false
		}
		if !asc && cur > id && cur-id <= stepLimit {
			for it.Prev() {
				if c := eventlog.KeyID(it.Key()); c <= id {
					return c == id
				}
			}
			return false
		}
		if cur == id {
			return true
		}
	}
	return it.SeekGE(eventlog.LogKey(id)) && eventlog.KeyID(it.Key()) == id
}
