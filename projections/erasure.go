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
// corrections and its place in the views. It takes two steps, so that it
// is the same on one node and on every node of a cluster:
//
//  1. ErasureTargets lists the ids to delete (an exclusive update that
//     only reads, so the writer's view of the corrections is current).
//  2. The caller appends an erasure event whose payload carries those ids
//     (never the name). Indexing that event deletes the ids' records, in
//     the batch that appends it, on this node and, in cluster mode, on
//     every node that applies the stream; Committed then rebuilds the
//     watchlist and gallery states.
//
// Events appended between the two steps are not erased.

// MaxErasureIDs bounds the ids one erasure event carries: a larger
// erasure is several events (each one message of the cluster's stream).
const MaxErasureIDs = 20000

// ErasurePayload is the payload of an erasure event.
type ErasurePayload struct {
	// Subject is "person" or "plate".
	Subject string `json:"subject"`
	// Hash is hex SHA-256 of Salt's bytes followed by the erased name or
	// normalised plate: who knows the name can check that it was erased;
	// the log alone does not tell it.
	Hash string `json:"hash"`
	Salt string `json:"salt"`
	// Erased counts the detections the whole request deletes.
	Erased int `json:"erased"`
	// IDs are the records this event deletes (detections, their
	// corrections, gallery or watchlist events); Part and Parts number
	// the events of one request.
	IDs   []uint64 `json:"ids"`
	Part  int      `json:"part"`
	Parts int      `json:"parts"`
}

// ErasureTargets returns the ids of every record an erasure of a person
// ("person", by exact name) or a plate ("plate", normalised) deletes:
// every face_match recognised as the name or corrected to it (plate_read
// for a plate) with its corrections, every older correction that named
// it, and the person's gallery events (the plate's watchlist events); and
// how many of them are detections.
func (v *View) ErasureTargets(ctx context.Context, subject, name string) (ids []uint64, detections int, err error) {
	if v.log == nil {
		return nil, 0, ErrNoLog
	}
	fam := byte('n')
	if subject == "plate" {
		fam, name = 'h', vocab.NormalizePlate(name)
	}
	if name == "" {
		return nil, 0, nil
	}
	err = v.log.Update(ctx, func(tx *eventlog.Tx) error {
		var err error
		ids, detections, err = v.collectErasure(tx, fam, name)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("projections: erasure: %w", err)
	}
	return ids, detections, nil
}

// collectErasure lists what an erasure deletes (writer goroutine,
// exclusive, reads only).
func (v *View) collectErasure(tx *eventlog.Tx, fam byte, name string) ([]uint64, int, error) {
	st := tx.State()
	// 1. The detections listed under name now.
	var dets []uint64
	lo := appendHistoryKey(nil, fam, name, 0)
	hi := appendHistoryKey(nil, fam, name, st.Last+1)
	it, err := tx.NewIter(lo, hi)
	if err != nil {
		return nil, 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		dets = append(dets, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	if err := it.Close(); err != nil {
		return nil, 0, err
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
			return nil, 0, err
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
		return nil, 0, err
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
			return nil, 0, err
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
		return nil, 0, err
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
			return nil, 0, err
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
			return nil, 0, err
		}
	}

	ids := slices.Clone(dets)
	for _, id := range dets {
		cit, err := tx.NewIter(correctionKey(id, 0), correctionKey(id+1, 0))
		if err != nil {
			return nil, 0, err
		}
		for ok := cit.First(); ok; ok = cit.Next() {
			ids = append(ids, binary.BigEndian.Uint64(cit.Key()[10:]))
		}
		if err := cit.Close(); err != nil {
			return nil, 0, err
		}
	}
	ids = append(ids, state...)
	for _, c := range stale {
		ids = append(ids, c.id)
	}
	slices.Sort(ids)
	return slices.Compact(ids), len(dets), nil
}

// applyErasure deletes the records an erasure event names (Index, writer
// goroutine, in the batch that appends the event) and writes the
// summaries of the blocks it touched.
func (v *View) applyErasure(w eventlog.Writer, e *eventlog.Entry) error {
	var ev struct {
		Payload ErasurePayload `json:"payload"`
	}
	if err := json.Unmarshal(e.JSON, &ev); err != nil {
		return fmt.Errorf("projections: erasure %d: %w", e.ID, err)
	}
	touched := map[uint64]bool{}
	for _, id := range ev.Payload.IDs {
		if id >= e.ID {
			continue // only what came before the request
		}
		if err := v.deleteRecord(w, id, touched); err != nil {
			return err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for b := range touched {
		if err := w.Set(zoneKey(b), encodeZone(*v.zoneLocked(b))); err != nil {
			return err
		}
	}
	return nil
}

// deleteRecord deletes one record with its blob and every index entry
// (type, time, source; a detection's history entry and corrections; a
// correction's entry) and counts it out of its block.
func (v *View) deleteRecord(w eventlog.Writer, id uint64, touched map[uint64]bool) error {
	val, err := v.log.Get(id)
	if err != nil {
		return nil // already gone (retention, an earlier erasure)
	}
	typ, ts, src, js, err := eventlog.SplitValue(val)
	if err != nil {
		return err
	}
	if err := v.forgetIdentity(w, id, typ, val); err != nil {
		return err
	}
	if typ == vocab.CorrectionCode {
		var c struct {
			Payload correctionPayload `json:"payload"`
		}
		if json.Unmarshal(js, &c) == nil {
			if err := w.Delete(correctionKey(c.Payload.EventID, id)); err != nil {
				return err
			}
		}
	}
	for _, k := range [][]byte{typeKey(typ, id), timeKey(ts, id), sourceKey(string(src), id), eventlog.LogKey(id), eventlog.SnapshotKey(id)} {
		if err := w.Delete(k); err != nil {
			return err
		}
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

// rebuildStates replays the watchlist and gallery events into fresh
// states and swaps them in (Committed, after an erasure deleted some of
// them): readers see the old state or the new one, never an empty one.
func (v *View) rebuildStates() {
	w := newWatchState()
	if _, err := replayActions(v.log, vocab.WatchlistChangeCode, w.apply); err != nil {
		v.logger.Error("watchlists not rebuilt after an erasure", "err", err)
	} else {
		v.watch.mu.Lock()
		v.watch.lists = w.lists
		v.watch.mu.Unlock()
	}
	g := newGalleryState()
	if _, err := replayActions(v.log, vocab.GalleryChangeCode, g.apply); err != nil {
		v.logger.Error("galleries not rebuilt after an erasure", "err", err)
	} else {
		v.gallery.mu.Lock()
		v.gallery.people = g.people
		v.gallery.mu.Unlock()
	}
	v.stalePlates()
}
