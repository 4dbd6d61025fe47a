package projections

import (
	"bytes"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// cleanupTx is retention's single deleting step, run exclusively on the
// log's writer (see doc.go, "Retention"). It decides from the zone map what
// goes, then deletes: the prefix by range deletions, late records one by
// one, the time index below cutoff by one range deletion.
// The ids of the late records it deletes are appended to *late when
// late is not nil.
func (v *View) cleanupTx(tx *eventlog.Tx, cutoff int64, late *[]uint64) (int, error) {
	st := tx.State()
	if st.Last < st.First {
		return 0, nil
	}
	low, end := st.First, st.Last+1 // ids in [low, end) may exist
	deleted := 0
	// Operators' state (watchlist, gallery, erasure events) never
	// expires: the prefix stops at the first such record, and the expired
	// detections beyond it go one by one (step 2).
	keep, err := firstState(tx, low, end)
	if err != nil {
		return 0, err
	}

	// 1a. Whole expired blocks, from the zone map.
	x := low
	v.mu.RLock()
	for b := low / blockSize; b*blockSize < end; b++ {
		z := v.zoneAtLocked(b)
		if z.live > 0 && z.max >= cutoff || (b+1)*blockSize > keep {
			break
		}
		deleted += int(z.live)
		x = min((b+1)*blockSize, end)
	}
	v.mu.RUnlock()

	// 1b. The expired records at the start of the first block that is not
	// wholly expired. Its zone says it holds an unexpired record, so this
	// read stops within the block.
	it, err := tx.NewIter(eventlog.LogKey(x), eventlog.LogKey(end))
	if err != nil {
		return 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		typ, ts, _, _, err := eventlog.SplitValue(it.Value())
		if err != nil {
			it.Close()
			return 0, err
		}
		if ts >= cutoff || !vocab.Expires(typ) || eventlog.KeyID(it.Key()) >= keep {
			break
		}
		x = eventlog.KeyID(it.Key()) + 1
		deleted++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}

	// 2. Late records beyond the prefix: only blocks whose min_ts is
	// expired are read. Their summaries are recomputed from survivors.
	type rewrite struct {
		b uint64
		z zone
	}
	var rewrites []rewrite
	var cand []uint64
	v.mu.RLock()
	for b := x / blockSize; b*blockSize < end; b++ {
		if z := v.zoneAtLocked(b); z.live > 0 && z.min < cutoff {
			cand = append(cand, b)
		}
	}
	v.mu.RUnlock()
	for _, b := range cand {
		from := max(b*blockSize, x)
		it, err := tx.NewIter(eventlog.LogKey(from), eventlog.LogKey(min((b+1)*blockSize, end)))
		if err != nil {
			return 0, err
		}
		var nz zone
		for ok := it.First(); ok; ok = it.Next() {
			typ, ts, src, _, err := eventlog.SplitValue(it.Value())
			if err != nil {
				it.Close()
				return 0, err
			}
			id := eventlog.KeyID(it.Key())
			if ts >= cutoff || !vocab.Expires(typ) {
				if nz.live == 0 {
					nz.min, nz.max = ts, ts
				}
				nz.min, nz.max = min(nz.min, ts), max(nz.max, ts)
				nz.live++
				if vocab.IsDetection(typ) {
					nz.det++
				}
				continue
			}
			// The time index entry goes with the range deletion below.
			if late != nil {
				*late = append(*late, id)
			}
			if err := tx.DeleteRecord(id); err != nil {
				it.Close()
				return 0, err
			}
			if err := tx.Delete(typeKey(typ, id)); err != nil {
				it.Close()
				return 0, err
			}
			if err := tx.Delete(sourceKey(string(src), id)); err != nil {
				it.Close()
				return 0, err
			}
			if err := v.forgetIdentity(tx, id, typ, it.Value()); err != nil {
				it.Close()
				return 0, err
			}
			deleted++
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
		rewrites = append(rewrites, rewrite{b, nz})
		if err := tx.Set(zoneKey(b), encodeZone(nz)); err != nil {
			return 0, err
		}
	}

	// 3. Range deletions: the prefix of the log, snapshots, type and source
	// indexes; the time index below cutoff; the summaries of whole blocks.
	if x > low {
		// The identity views of the prefix's detections: one range
		// deletion per name in the history families (a plate seen often
		// is one deletion), and their corrections.
		if err := v.forgetPrefixIdentities(tx, low, x); err != nil {
			return 0, err
		}
		if err := tx.TrimPrefix(x); err != nil {
			return 0, err
		}
		for c := 1; c <= int(vocab.MaxTypeCode); c++ {
			if err := tx.DeleteRange(typeKey(uint8(c), low), typeKey(uint8(c), x)); err != nil {
				return 0, err
			}
		}
		if err := v.eachSource(tx, func(src []byte) error {
			return tx.DeleteRange(sourceKey(string(src), low), sourceKey(string(src), x))
		}); err != nil {
			return 0, err
		}
		if x/blockSize > 0 {
			if err := tx.DeleteRange(zoneKey(0), zoneKey(x/blockSize)); err != nil {
				return 0, err
			}
		}
	}
	if deleted > 0 {
		if err := tx.DeleteRange(timeKey(0, 0), timeKey(cutoff, 0)); err != nil {
			return 0, err
		}
	}

	// The in-memory map follows what the batch will commit.
	v.mu.Lock()
	for _, r := range rewrites {
		*v.zoneLocked(r.b) = r.z
	}
	if nb := x / blockSize; nb > v.mu.base {
		drop := min(nb-v.mu.base, uint64(len(v.mu.zones)))
		v.mu.zones = append(v.mu.zones[:0:0], v.mu.zones[drop:]...)
		v.mu.base = nb
	}
	// Blocks wholly expired but not dropped (the one holding x) keep their
	// summaries; a fully trimmed one reads live 0.
	v.mu.Unlock()
	return deleted, nil
}

// zoneAtLocked returns block b's summary or the zero summary.
func (v *View) zoneAtLocked(b uint64) zone {
	if b < v.mu.base || b-v.mu.base >= uint64(len(v.mu.zones)) {
		return zone{}
	}
	return v.mu.zones[b-v.mu.base]
}

// eachSource calls fn with every source that has index entries.
func (v *View) eachSource(r iterSource, fn func(src []byte) error) error {
	return eachName(r, 's', func(src []byte) (bool, error) { return true, fn(src) })
}

// iterSource is what eachName reads: the log or an update's Tx.
type iterSource interface {
	NewIter(lo, up []byte) (*eventlog.Iter, error)
}

// eachName calls fn with each distinct name of an index family keyed
// 'I' fam name 0x00 id (the sources), in byte order, seeking from one name to the next: O(names), not O(entries).
// fn may keep name; it stops the walk by answering false.
func eachName(r iterSource, fam byte, fn func(name []byte) (bool, error)) error {
	it, err := r.NewIter([]byte{eventlog.FamIndex, fam}, []byte{eventlog.FamIndex, fam + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 2+1+8 {
			return eventlog.ErrCorrupt
		}
		name := bytes.Clone(k[2 : len(k)-9])
		if more, err := fn(name); err != nil || !more {
			return err
		}
		ok = it.SeekGE(append(append([]byte{eventlog.FamIndex, fam}, name...), 1))
	}
	return it.Error()
}

// firstState returns the smallest id in [low, end) of an operator's state
// record (a type that never expires), end when there is none: one seek in
// the type index per such type.
func firstState(tx *eventlog.Tx, low, end uint64) (uint64, error) {
	first := end
	for c := 1; c <= int(vocab.MaxTypeCode); c++ {
		if vocab.Expires(uint8(c)) {
			continue
		}
		it, err := tx.NewIter(typeKey(uint8(c), low), typeKey(uint8(c), end))
		if err != nil {
			return 0, err
		}
		if it.First() {
			first = min(first, indexID(it.Key()))
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return first, nil
}
