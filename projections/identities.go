package projections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Identities: corrections, and the plate and person histories (see doc.go,
// "Identities"). The writer goroutine (Index, Finish, Update functions)
// owns eff; readers see corrections through ids.member, which Committed
// updates only after the batch is durable.

// correctionEffect is what a correction makes of its detection.
type correctionEffect struct {
	person, plate string
	falsePositive bool
}

// correctionPayload is the payload of a correction event.
type correctionPayload struct {
	EventID       uint64  `json:"event_id"`
	PersonName    *string `json:"person_name,omitempty"`
	PlateText     *string `json:"plate_text,omitempty"`
	FalsePositive bool    `json:"false_positive,omitempty"`
	Note          *string `json:"note,omitempty"`
}

func (p *correctionPayload) effect() correctionEffect {
	var e correctionEffect
	switch {
	case p.PersonName != nil:
		e.person = *p.PersonName
	case p.PlateText != nil:
		e.plate = *p.PlateText
	default:
		e.falsePositive = true
	}
	return e
}

// identities is the View's identity state.
type identities struct {
	// eff is each corrected detection's newest correction, as the writer
	// has applied it (writer goroutine only).
	eff    map[uint64]correctionEffect
	keyBuf []byte
	// hist are the batch's history entries, written sorted by Finish:
	// key and value bytes in histBuf, offsets in hist.
	hist    []histEntry
	histBuf []byte

	// member maps each corrected detection's id to its "correction"
	// member, as reads carry it: {"id":…,"created_at":…,<fields>}. A
	// sync.Map: every read of an event looks it up, concurrently and
	// without a lock; it changes once per correction. members counts the
	// entries, so that reads skip the lookup while there are none.
	member  sync.Map
	members atomic.Int64
	// maybe is a bit per id, set for every id that has been corrected
	// (never cleared: a bit without a member only costs a map miss). Reads
	// test it first, a few nanoseconds, and look the map up for the few
	// ids it marks. It grows by copying, under growMu, and is swapped in
	// whole: readers load it once per lookup. One goroutine marks at a
	// time (Attach, then the commit goroutine).
	maybe  atomic.Pointer[[]atomic.Uint64]
	growMu sync.Mutex
}

// mark sets id's bit in maybe, growing it as needed.
func (ids *identities) mark(id uint64) {
	w := id / 64
	p := ids.maybe.Load()
	if p == nil || w >= uint64(len(*p)) {
		ids.growMu.Lock()
		if p = ids.maybe.Load(); p == nil || w >= uint64(len(*p)) {
			n := max(w+1, 2*uint64(len(deref(p))))
			grown := make([]atomic.Uint64, n)
			for i := range deref(p) {
				grown[i].Store((*p)[i].Load())
			}
			ids.maybe.Store(&grown)
			p = &grown
		}
		ids.growMu.Unlock()
	}
	(*p)[w].Or(1 << (id % 64))
}

func deref(p *[]atomic.Uint64) []atomic.Uint64 {
	if p == nil {
		return nil
	}
	return *p
}

// marked reports whether id may be corrected.
func (ids *identities) marked(id uint64) bool {
	p := ids.maybe.Load()
	w := id / 64
	return p != nil && w < uint64(len(*p)) && (*p)[w].Load()&(1<<(id%64)) != 0
}

type histEntry struct{ k0, v0, end int }

func newIdentities() *identities {
	return &identities{eff: map[uint64]correctionEffect{}}
}

func correctionKey(target, id uint64) []byte {
	k := make([]byte, 0, 18)
	k = append(k, eventlog.FamIndex, 'c')
	k = binary.BigEndian.AppendUint64(k, target)
	return binary.BigEndian.AppendUint64(k, id)
}

// A history key holds a hash of the name, never the name: keys are what
// Pebble copies into places an erasure's deletions do not reach (the
// boundaries of every table, recorded in the MANIFEST, whose old edits
// stay in the file until it is rewritten). The name is in the values,
// which deletion and compaction do remove.

// nameHashLen is the length of a history key's name hash: 128 bits of
// SHA-256, so two names never share a history.
const nameHashLen = 16

// appendNameHash appends the hash that stands for name in history keys.
func appendNameHash(k []byte, name string) []byte {
	h := sha256.Sum256([]byte(name))
	return append(k, h[:nameHashLen]...)
}

// appendHistoryKey appends the key of a history entry: fam is 'h' (plate
// reads, by normalised plate) or 'n' (face matches, by person name).
func appendHistoryKey(k []byte, fam byte, name string, id uint64) []byte {
	k = append(k, eventlog.FamIndex, fam)
	k = appendNameHash(k, name)
	return binary.BigEndian.AppendUint64(k, id)
}

// historyKeyLen is the length of every history key.
const historyKeyLen = 2 + nameHashLen + 8

// appendHistoryValue appends a history entry's value: ts_ms, the name
// (u16 length, bytes) and the camera.
func appendHistoryValue(v []byte, ts int64, name, src string) []byte {
	v = binary.BigEndian.AppendUint64(v, uint64(ts))
	v = binary.BigEndian.AppendUint16(v, uint16(len(name)))
	v = append(v, name...)
	return append(v, src...)
}

func historyValue(ts int64, name, src string) []byte { return appendHistoryValue(nil, ts, name, src) }

// decodeHistoryValue splits a history entry's value.
func decodeHistoryValue(v []byte) (ts int64, name, src []byte, ok bool) {
	if len(v) < 10 {
		return 0, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(v[8:]))
	if len(v) < 10+n {
		return 0, nil, nil, false
	}
	return int64(binary.BigEndian.Uint64(v)), v[10 : 10+n], v[10+n:], true
}

// loadCorrections fills both views of the corrections from the 'I' 'c'
// family: per detection, the entry with the largest correction id is the
// newest.
func (v *View) loadCorrections(l eventlog.Store) (int, error) {
	it, err := l.NewIter([]byte{eventlog.FamIndex, 'c'}, []byte{eventlog.FamIndex, 'c' + 1})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 18 {
			return n, fmt.Errorf("projections: correction key %x: %w", k, eventlog.ErrCorrupt)
		}
		target := binary.BigEndian.Uint64(k[2:10])
		var p correctionPayload
		if err := json.Unmarshal(it.Value(), &p); err != nil {
			return n, fmt.Errorf("projections: correction of %d: %w", target, eventlog.ErrCorrupt)
		}
		v.ids.eff[target] = p.effect()
		v.ids.setMember(target, bytes.Clone(it.Value()))
		n++
	}
	return n, it.Error()
}

// indexIdentity collects what a record adds to the identity views (Index,
// writer goroutine): a correction's entry and the history moves it
// causes, a detection's history entry.
func (v *View) indexIdentity(w eventlog.Writer, e *eventlog.Entry) error {
	ids := v.ids
	switch e.Type {
	case vocab.FaceMatchCode, vocab.PlateReadCode:
		fam, name, ok := v.historyOf(e.ID, e.Type, e.JSON)
		if !ok {
			return nil
		}
		k0 := len(ids.histBuf)
		ids.histBuf = appendHistoryKey(ids.histBuf, fam, name, e.ID)
		v0 := len(ids.histBuf)
		ids.histBuf = appendHistoryValue(ids.histBuf, e.TsMs, name, e.Source)
		ids.hist = append(ids.hist, histEntry{k0, v0, len(ids.histBuf)})
		return nil
	case vocab.ErasureCode:
		return v.applyErasure(w, e)
	case vocab.CorrectionCode:
		var c struct {
			ID        uint64            `json:"id"`
			CreatedAt string            `json:"created_at"`
			Payload   correctionPayload `json:"payload"`
		}
		if err := json.Unmarshal(e.JSON, &c); err != nil {
			return fmt.Errorf("projections: correction %d: %w", e.ID, err)
		}
		target := c.Payload.EventID
		tv, err := v.log.Get(target)
		if err != nil {
			// The handler checked the detection; retention or an erasure
			// may have removed it since. The correction stays in the log
			// and applies to nothing.
			return nil
		}
		typ, ts, src, js, err := eventlog.SplitValue(tv)
		if err != nil {
			return err
		}
		// Move the detection's history entry from its old name to its new.
		if fam, name, ok := v.historyOf(target, typ, js); ok {
			if err := w.Delete(appendHistoryKey(ids.keyBuf[:0], fam, name, target)); err != nil {
				return err
			}
		}
		ids.eff[target] = c.Payload.effect()
		if fam, name, ok := v.historyOf(target, typ, js); ok {
			if err := w.Set(appendHistoryKey(ids.keyBuf[:0], fam, name, target), historyValue(ts, name, string(src))); err != nil {
				return err
			}
		}
		return w.Set(correctionKey(target, e.ID), correctionMember(e.ID, c.CreatedAt, &c.Payload))
	}
	return nil
}

// finishIdentities writes the batch's history entries in key order (see
// Finish for why the order matters).
func (v *View) finishIdentities(w eventlog.Writer) error {
	ids := v.ids
	if len(ids.hist) == 0 {
		return nil
	}
	b := ids.histBuf
	slices.SortFunc(ids.hist, func(x, y histEntry) int { return bytes.Compare(b[x.k0:x.v0], b[y.k0:y.v0]) })
	for _, h := range ids.hist {
		if err := w.Set(b[h.k0:h.v0], b[h.v0:h.end]); err != nil {
			return err
		}
	}
	ids.hist = ids.hist[:0]
	ids.histBuf = ids.histBuf[:0]
	return nil
}

// correctionMember is the "correction" member reads of the detection
// carry: the correction's id and created_at, then its fields.
func correctionMember(id uint64, createdAt string, p *correctionPayload) []byte {
	b := []byte(`{"id":`)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendQuote(b, createdAt) // ASCII digits and punctuation only
	fields, _ := json.Marshal(struct {
		PersonName    *string `json:"person_name,omitempty"`
		PlateText     *string `json:"plate_text,omitempty"`
		FalsePositive bool    `json:"false_positive,omitempty"`
		Note          *string `json:"note,omitempty"`
	}{p.PersonName, p.PlateText, p.FalsePositive, p.Note})
	if len(fields) > 2 {
		b = append(b, ',')
		b = append(b, fields[1:len(fields)-1]...)
	}
	// event_id lets loadCorrections rebuild the effect from the member.
	b = append(b, `,"event_id":`...)
	b = strconv.AppendUint(b, p.EventID, 10)
	return append(b, '}')
}

// historyOf returns the history family and name a detection is listed
// under, after its newest correction (writer goroutine): a face under its
// person name, a plate read under its normalised plate text; a false
// positive under none.
func (v *View) historyOf(id uint64, typ uint8, js []byte) (fam byte, name string, ok bool) {
	eff, corrected := v.ids.eff[id]
	if corrected && eff.falsePositive {
		return 0, "", false
	}
	switch typ {
	case vocab.FaceMatchCode:
		if corrected && eff.person != "" {
			return 'n', eff.person, true
		}
		s, ok := payloadString(js, `"person_name":`)
		return 'n', s, ok
	case vocab.PlateReadCode:
		if corrected && eff.plate != "" {
			return 'h', vocab.NormalizePlate(eff.plate), true
		}
		s, ok := payloadString(js, `"plate_text":`)
		if !ok {
			return 0, "", false
		}
		n := vocab.NormalizePlate(s)
		return 'h', n, n != ""
	}
	return 0, "", false
}

// payloadString reads the string member that opens a stored detection's
// payload (person_name for faces, plate_text for plates: the encoder
// writes it first). The payload is found at the first `,"payload":{`:
// inside a JSON string every quote is escaped, so that byte sequence can
// only be the member itself.
func payloadString(js []byte, member string) (string, bool) {
	i := bytes.Index(js, []byte(`,"payload":{`))
	if i < 0 {
		return "", false
	}
	rest := js[i+len(`,"payload":{`):]
	if !bytes.HasPrefix(rest, []byte(member)) {
		return "", false
	}
	rest = rest[len(member):]
	// The string ends at the first quote not escaped.
	end := 1
	for end < len(rest) && rest[end] != '"' {
		if rest[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(rest) {
		return "", false
	}
	raw := rest[:end+1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:end]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// committedIdentities publishes a durable batch's corrections to readers
// (commit goroutine). They are read again from the entries rather than
// handed over by Index: the writer may already be indexing the next batch.
func (v *View) committedIdentities(b eventlog.Batch) {
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Type == vocab.ErasureCode {
			v.rebuildStates()
			continue
		}
		if e.Type == vocab.WatchlistChangeCode {
			if err := v.watch.apply(e.JSON); err != nil {
				v.logger.Error("watchlist_change not applied", "id", e.ID, "err", err)
			}
			continue
		}
		if e.Type != vocab.CorrectionCode {
			continue
		}
		var c struct {
			CreatedAt string            `json:"created_at"`
			Payload   correctionPayload `json:"payload"`
		}
		if json.Unmarshal(e.JSON, &c) != nil {
			continue // Index refused it: the batch never committed
		}
		m := correctionMember(e.ID, c.CreatedAt, &c.Payload)
		v.ids.setMember(c.Payload.EventID, m)
	}
}

// Decorate appends js, a stored detection's JSON, to dst with its newest
// correction spliced in as a "correction" member before the closing
// brace, or unchanged when it has none. Every read path of events calls
// it, so a corrected event reads the same on each.
func (v *View) Decorate(dst []byte, id uint64, js []byte) []byte {
	var m []byte
	if v.ids.marked(id) {
		if x, ok := v.ids.member.Load(id); ok {
			m = x.([]byte)
		}
	}
	if m == nil || len(js) == 0 || js[len(js)-1] != '}' {
		return append(dst, js...)
	}
	dst = append(dst, js[:len(js)-1]...)
	dst = append(dst, `,"correction":`...)
	dst = append(dst, m...)
	return append(dst, '}')
}

// hasCorrections reports whether any detection is corrected: the read
// paths skip Decorate's lookup when none is.
func (v *View) hasCorrections() bool {
	return v.ids.members.Load() > 0
}

// forgetCorrections drops the corrections of deleted detections from both
// views (retention and erasure, writer goroutine).
func (v *View) forgetCorrections(targets []uint64) {
	if len(targets) == 0 {
		return
	}
	for _, t := range targets {
		delete(v.ids.eff, t)
		if _, loaded := v.ids.member.LoadAndDelete(t); loaded {
			v.ids.members.Add(-1)
		}
	}
}

// setMember publishes id's newest correction member to readers.
func (ids *identities) setMember(id uint64, m []byte) {
	ids.mark(id) // before the member: a reader that sees it finds the bit
	if _, loaded := ids.member.Swap(id, m); !loaded {
		ids.members.Add(1)
	}
}

// Aggregate is what the views know of one plate or person: how many
// retained detections, when first and last seen (ts_ms) and by which
// cameras.
type Aggregate struct {
	Name        string   `json:"-"`
	Count       uint64   `json:"count"`
	FirstSeenMs int64    `json:"first_seen_ms"`
	LastSeenMs  int64    `json:"last_seen_ms"`
	Cameras     []string `json:"cameras"`
}

// aggregate reads one name's history range (the detections at or below
// the watermark).
func (v *View) aggregate(fam byte, name string) (Aggregate, error) {
	a := Aggregate{Name: name, Cameras: []string{}}
	lo := appendHistoryKey(nil, fam, name, 0)
	hi := appendHistoryKey(nil, fam, name, v.log.LastID()+1)
	it, err := v.log.NewIter(lo, hi)
	if err != nil {
		return a, err
	}
	defer it.Close()
	cams := map[string]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		ts, _, src, ok := decodeHistoryValue(it.Value())
		if !ok {
			return a, eventlog.ErrCorrupt
		}
		if a.Count == 0 || ts < a.FirstSeenMs {
			a.FirstSeenMs = ts
		}
		a.LastSeenMs = max(a.LastSeenMs, ts)
		a.Count++
		if !cams[string(src)] {
			cams[string(src)] = true
			a.Cameras = append(a.Cameras, string(src))
		}
	}
	slices.Sort(a.Cameras)
	return a, it.Error()
}

// names calls fn with each distinct name of a history family ('h', 'n'),
// in the order of their hashes, reading one entry per name.
func (v *View) names(fam byte, fn func(name string) (bool, error)) error {
	it, err := v.log.NewIter([]byte{eventlog.FamIndex, fam}, []byte{eventlog.FamIndex, fam + 1})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		_, name, _, valid := decodeHistoryValue(it.Value())
		if len(k) != historyKeyLen || !valid {
			return eventlog.ErrCorrupt
		}
		if more, err := fn(string(name)); err != nil || !more {
			return err
		}
		// Past every id of this hash.
		next := append(bytes.Clone(k[:2+nameHashLen]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0)
		ok = it.SeekGE(next)
	}
	return it.Error()
}

// People lists every person with retained face matches (by corrected
// name; "unknown" included), by name. It reads the whole person history:
// an operator's page, not a hot path.
func (v *View) People() ([]Aggregate, error) {
	out := []Aggregate{}
	err := v.names('n', func(name string) (bool, error) {
		a, err := v.aggregate('n', name)
		if a.Count > 0 {
			out = append(out, a)
		}
		return true, err
	})
	slices.SortFunc(out, func(a, b Aggregate) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Person is one person's aggregate.
func (v *View) Person(name string) (Aggregate, error) { return v.aggregate('n', name) }

// Plate is one normalised plate's aggregate.
func (v *View) Plate(plate string) (Aggregate, error) { return v.aggregate('h', plate) }

// forgetIdentity deletes what the identity views hold of a detection that
// is being deleted (retention, erasure; writer goroutine): its history
// entry and its corrections.
func (v *View) forgetIdentity(tx eventlog.Writer, id uint64, typ uint8, val []byte) error {
	if !vocab.IsDetection(typ) {
		return nil
	}
	_, _, _, js, err := eventlog.SplitValue(val)
	if err != nil {
		return err
	}
	if fam, name, ok := v.historyOf(id, typ, js); ok {
		if err := tx.Delete(appendHistoryKey(nil, fam, name, id)); err != nil {
			return err
		}
	}
	if _, corrected := v.ids.eff[id]; corrected {
		if err := tx.DeleteRange(correctionKey(id, 0), correctionKey(id+1, 0)); err != nil {
			return err
		}
		v.forgetCorrections([]uint64{id})
	}
	return nil
}

// forgetPrefixIdentities deletes the identity views of the detections in
// [low, x), which retention trims as a prefix: it reads the prefix once
// and deletes each name's history entries below x with one range
// deletion, and the corrections of the prefix with one more.
func (v *View) forgetPrefixIdentities(tx *eventlog.Tx, low, x uint64) error {
	type name struct {
		fam  byte
		name string
	}
	names := map[name]bool{}
	var corrected []uint64
	it, err := tx.NewIter(eventlog.LogKey(low), eventlog.LogKey(x))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		typ, _, _, js, err := eventlog.SplitValue(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		id := eventlog.KeyID(it.Key())
		if fam, n, ok := v.historyOf(id, typ, js); ok && vocab.IsDetection(typ) {
			names[name{fam, n}] = true
		}
		if _, ok := v.ids.eff[id]; ok {
			corrected = append(corrected, id)
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for n := range names {
		if err := tx.DeleteRange(appendHistoryKey(nil, n.fam, n.name, low), appendHistoryKey(nil, n.fam, n.name, x)); err != nil {
			return err
		}
	}
	if len(corrected) > 0 {
		if err := tx.DeleteRange(correctionKey(low, 0), correctionKey(x, 0)); err != nil {
			return err
		}
		v.forgetCorrections(corrected)
	}
	return nil
}

// indexID is the id that ends an index key (type, source, history,
// correction keys all end with it).
func indexID(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// viewsVersionKey holds the version of the identity views a store has:
// absent in stores written before they existed, whose detections have no
// history entries yet.
var viewsVersionKey = []byte{eventlog.FamIndex, 'v'}

// viewsVersion 1: the plate and person histories cover every detection.
//
// Version 2 keys histories by a hash of the name (1, written by
// development builds only, keyed them by the name).
const viewsVersion = 2

// backfillChunk is how many log records one backfill update reads: a
// bounded batch, so a large store is converted in many small commits.
const backfillChunk = 64 << 10

// backfillHistory writes the history entries of every detection of a
// store from before the identity views, once (Attach, before anything
// appends), in chunks of exclusive updates, then marks the store. A crash
// part-way repeats it: the entries it writes are the same.
func (v *View) backfillHistory(l eventlog.Store) (int, error) {
	it, err := l.NewIter(viewsVersionKey, append(bytes.Clone(viewsVersionKey), 0))
	if err != nil {
		return 0, err
	}
	done := it.First() && len(it.Value()) == 8 && binary.BigEndian.Uint64(it.Value()) == viewsVersion
	if err := it.Close(); err != nil {
		return 0, err
	}
	if done {
		return 0, nil
	}
	// Entries of an older layout go first.
	if err := l.Update(context.Background(), func(tx *eventlog.Tx) error {
		for _, fam := range []byte{'h', 'n'} {
			if err := tx.DeleteRange([]byte{eventlog.FamIndex, fam}, []byte{eventlog.FamIndex, fam + 1}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("projections: backfill histories: %w", err)
	}
	n := 0
	st := l.State()
	for from := st.First; from <= st.Last; from += backfillChunk {
		to := min(from+backfillChunk, st.Last+1)
		err := l.Update(context.Background(), func(tx *eventlog.Tx) error {
			it, err := tx.NewIter(eventlog.LogKey(from), eventlog.LogKey(to))
			if err != nil {
				return err
			}
			defer it.Close()
			for ok := it.First(); ok; ok = it.Next() {
				typ, ts, src, js, err := eventlog.SplitValue(it.Value())
				if err != nil {
					return err
				}
				id := eventlog.KeyID(it.Key())
				if fam, name, ok := v.historyOf(id, typ, js); ok && vocab.IsDetection(typ) {
					if err := tx.Set(appendHistoryKey(nil, fam, name, id), historyValue(ts, name, string(src))); err != nil {
						return err
					}
					n++
				}
			}
			return it.Error()
		})
		if err != nil {
			return n, fmt.Errorf("projections: backfill histories: %w", err)
		}
	}
	err = l.Update(context.Background(), func(tx *eventlog.Tx) error {
		return tx.Set(viewsVersionKey, binary.BigEndian.AppendUint64(nil, viewsVersion))
	})
	return n, err
}
