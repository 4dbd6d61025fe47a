package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Erasure on request (see doc.go, "Erasure"): every record of a person or
// a plate leaves the store, with its blob, its index entries, its
// corrections and its place in the views.

// ErasePerson deletes every face_match recognised as name or corrected to
// it, with its snapshot and corrections, and the person's gallery events
// and images. ErasePlate deletes every plate_read of a normalised plate
// (read as it or corrected to it), with its corrections, and the
// plate's watchlist changes. Both run as one exclusive update and return
// how many events went (the detections, not their corrections). The
// caller then scrubs the store (eventlog.Log.Scrub) and records the
// erasure as an event.
func (v *View) ErasePerson(ctx context.Context, name string) (int, error) {
	return v.erase(ctx, 'n', name)
}

// ErasePlate: see ErasePerson.
func (v *View) ErasePlate(ctx context.Context, plate string) (int, error) {
	return v.erase(ctx, 'h', vocab.NormalizePlate(plate))
}

func (v *View) erase(ctx context.Context, fam byte, name string) (int, error) {
	if v.log == nil {
		return 0, ErrNoLog
	}
	if name == "" {
		return 0, nil
	}
	n := 0
	err := v.log.Update(ctx, func(tx *eventlog.Tx) error {
		var err error
		n, err = v.eraseTx(tx, fam, name)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("projections: erase: %w", err)
	}
	v.stalePlates()
	if fam == 'h' {
		v.watch.forget(name)
	} else {
		v.forgetGallery(name)
	}
	return n, nil
}

// eraseTx collects and deletes (writer goroutine, exclusive).
func (v *View) eraseTx(tx *eventlog.Tx, fam byte, name string) (int, error) {
	st := tx.State()
	// 1. The detections listed under name now.
	var dets []uint64
	lo := appendHistoryKey(nil, fam, name, 0)
	hi := appendHistoryKey(nil, fam, name, st.Last+1)
	it, err := tx.NewIter(lo, hi)
	if err != nil {
		return 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		dets = append(dets, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	// 2. Those recognised as name and corrected to another (or to a
	// false positive): only corrected detections can be, and they are in
	// the writer's map.
	for id := range v.ids.eff {
		val, err := tx.Get(eventlog.LogKey(id))
		if err != nil {
			continue
		}
		typ, _, _, js, err := eventlog.SplitValue(val)
		if err != nil {
			return 0, err
		}
		if originalName(fam, typ, js) == name {
			dets = append(dets, id)
		}
	}
	slices.Sort(dets)
	dets = slices.Compact(dets)
	// 3. The operators' records that name it: gallery changes of a
	// person, watchlist changes of a plate.
	var state []uint64
	code, member := vocab.GalleryChangeCode, "person_name"
	if fam == 'h' {
		code, member = vocab.WatchlistChangeCode, "plate"
	}
	it, err = tx.NewIter(typeKey(code, 0), typeKey(code+1, 0))
	if err != nil {
		return 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		id := indexID(it.Key())
		val, err := tx.Get(eventlog.LogKey(id))
		if err != nil {
			continue
		}
		_, _, _, js, err := eventlog.SplitValue(val)
		if err != nil {
			it.Close()
			return 0, err
		}
		var e struct {
			Payload map[string]any `json:"payload"`
		}
		if json.Unmarshal(js, &e) == nil {
			if s, _ := e.Payload[member].(string); s != "" && (s == name || fam == 'h' && vocab.NormalizePlate(s) == name) {
				state = append(state, id)
			}
		}
	}
	if err := it.Close(); err != nil {
		return 0, err
	}

	// 4. Older corrections that named it, of detections listed under
	// another name now (a newer correction moved them on).
	type corrKey struct{ target, id uint64 }
	var stale []corrKey
	for target := range v.ids.eff {
		if _, gone := slices.BinarySearch(dets, target); gone {
			continue
		}
		cit, err := tx.NewIter(correctionKey(target, 0), correctionKey(target+1, 0))
		if err != nil {
			return 0, err
		}
		for ok := cit.First(); ok; ok = cit.Next() {
			var p correctionPayload
			if json.Unmarshal(cit.Value(), &p) != nil {
				continue
			}
			e := p.effect()
			if fam == 'n' && e.person == name || fam == 'h' && e.plate != "" && vocab.NormalizePlate(e.plate) == name {
				stale = append(stale, corrKey{target, binary.BigEndian.Uint64(cit.Key()[10:])})
			}
		}
		if err := cit.Close(); err != nil {
			return 0, err
		}
	}

	// Delete: each detection with its corrections, then the state records.
	touched := map[uint64]bool{}
	for _, id := range dets {
		cit, err := tx.NewIter(correctionKey(id, 0), correctionKey(id+1, 0))
		if err != nil {
			return 0, err
		}
		var corrs []uint64
		for ok := cit.First(); ok; ok = cit.Next() {
			corrs = append(corrs, binary.BigEndian.Uint64(cit.Key()[10:]))
		}
		if err := cit.Close(); err != nil {
			return 0, err
		}
		if err := v.deleteRecordTx(tx, id, touched); err != nil {
			return 0, err
		}
		for _, c := range corrs {
			if err := v.deleteRecordTx(tx, c, touched); err != nil {
				return 0, err
			}
		}
	}
	for _, id := range state {
		if err := v.deleteRecordTx(tx, id, touched); err != nil {
			return 0, err
		}
	}
	for _, c := range stale {
		if err := v.deleteRecordTx(tx, c.id, touched); err != nil {
			return 0, err
		}
		if err := tx.Delete(correctionKey(c.target, c.id)); err != nil {
			return 0, err
		}
	}
	// The touched blocks' summaries: live counts only (their ts bounds
	// stay, which may only make them looser).
	v.mu.Lock()
	defer v.mu.Unlock()
	for b := range touched {
		if err := tx.Set(zoneKey(b), encodeZone(*v.zoneLocked(b))); err != nil {
			return 0, err
		}
	}
	return len(dets), nil
}

// deleteRecordTx deletes one record with its blob and every index entry
// (type, time, source; a detection's history entry and corrections) and
// counts it out of its block.
func (v *View) deleteRecordTx(tx *eventlog.Tx, id uint64, touched map[uint64]bool) error {
	val, err := tx.Get(eventlog.LogKey(id))
	if err != nil {
		return nil // already gone (a correction of two erased names)
	}
	typ, ts, src, _, err := eventlog.SplitValue(val)
	if err != nil {
		return err
	}
	if err := v.forgetIdentity(tx, id, typ, val); err != nil {
		return err
	}
	for _, k := range [][]byte{typeKey(typ, id), timeKey(ts, id), sourceKey(string(src), id)} {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	if err := tx.DeleteRecord(id); err != nil {
		return err
	}
	v.mu.Lock()
	if z := v.zoneLocked(id / blockSize); z.live > 0 {
		z.live--
		if vocab.IsDetection(typ) && z.det > 0 {
			z.det--
		}
	}
	v.mu.Unlock()
	touched[id/blockSize] = true
	return nil
}

// originalName is the name a detection was stored under, before any
// correction: the person of a face (fam 'n'), the normalised plate of a
// plate read (fam 'h'); "" for other types.
func originalName(fam byte, typ uint8, js []byte) string {
	switch {
	case fam == 'n' && typ == vocab.FaceMatchCode:
		s, _ := payloadString(js, `"person_name":`)
		return s
	case fam == 'h' && typ == vocab.PlateReadCode:
		s, _ := payloadString(js, `"plate_text":`)
		return vocab.NormalizePlate(s)
	}
	return ""
}

// forget drops a plate from the watchlist state (its changes were erased).
func (w *watchState) forget(plate string) {
	key := vocab.PlateKey(plate)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lists {
		if e, ok := l[key]; ok && vocab.NormalizePlate(e.Plate) == plate {
			delete(l, key)
		}
	}
}
