package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strconv"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Event returns the stored JSON and type of event id.
func (v *View) Event(id uint64) (uint8, []byte, error) {
	val, err := v.log.Get(id)
	if err != nil {
		return 0, nil, err
	}
	typ, _, _, js, err := eventlog.SplitValue(val)
	if err != nil || !vocab.IsDetection(typ) {
		return typ, js, err
	}
	return typ, v.Decorate(nil, id, js), nil
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Events   uint64
	FirstID  uint64
	LastID   uint64
	LowWater uint64
	// UncoveredSource counts source index entries without a record copy
	// (SOURCE_INDEX=keys, or written before the index was covering); not a
	// problem.
	UncoveredSource uint64
	Problems        []string
}

// maxProblems bounds the report: the first ones say what is wrong.
const maxProblems = 50

func (r *VerifyReport) add(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// recMeta is what Verify keeps of a record to check its index entries.
type recMeta struct {
	ts int64
	// sum hashes the stored record, to check the source index's copies.
	sum  uint64
	src  uint32 // index into recTable.srcs
	typ  uint8
	live bool
	// hist hashes the history entry the detection should have (family
	// and corrected name); 0 for none.
	hist uint64
}

// recTable holds a recMeta per id, in a slice over the ids the log's state
// spans (dense apart from retention's holes), with sources interned: 32
// bytes per record. (A map with a string per record, the first version,
// took several times as much.) A record outside the span (below the
// low-water id:
// a problem Verify reports) goes to extra, so its index entries are still
// checked against it.
type recTable struct {
	base   uint64
	slots  []recMeta
	extra  map[uint64]recMeta
	srcIdx map[string]uint32
	srcs   []string
}

// maxVerifySpan bounds the id span Verify holds in memory (6 GiB).
const maxVerifySpan = 1 << 28

func newRecTable(st eventlog.State) (*recTable, error) {
	t := &recTable{base: max(st.First, 1), extra: map[uint64]recMeta{}, srcIdx: map[string]uint32{}}
	if st.Last >= t.base {
		span := st.Last - t.base + 1
		if span > maxVerifySpan {
			return nil, fmt.Errorf("projections: verify: ids %d..%d span more than %d; too many to check in memory", t.base, st.Last, maxVerifySpan)
		}
		t.slots = make([]recMeta, span)
	}
	return t, nil
}

func (t *recTable) inSpan(id uint64) bool {
	return id >= t.base && id-t.base < uint64(len(t.slots))
}

// put records id.
func (t *recTable) put(id uint64, typ uint8, ts int64, src []byte, sum uint64) {
	i, ok := t.srcIdx[string(src)]
	if !ok {
		i = uint32(len(t.srcs))
		t.srcs = append(t.srcs, string(src))
		t.srcIdx[t.srcs[i]] = i
	}
	m := recMeta{ts: ts, sum: sum, src: i, typ: typ, live: true}
	if t.inSpan(id) {
		t.slots[id-t.base] = m
	} else {
		t.extra[id] = m
	}
}

func (t *recTable) setHist(id, h uint64) {
	if t.inSpan(id) {
		t.slots[id-t.base].hist = h
	} else if m, ok := t.extra[id]; ok {
		m.hist = h
		t.extra[id] = m
	}
}

func (t *recTable) get(id uint64) (recMeta, bool) {
	if !t.inSpan(id) {
		m, ok := t.extra[id]
		return m, ok
	}
	m := t.slots[id-t.base]
	return m, m.live
}

func (t *recTable) source(m recMeta) string { return t.srcs[m.src] }

// Verify checks the store: record ids and order, the low-water id, the
// JSON's id against its key, created_at order, every index entry against
// its record and every record against its index entries, the block
// summaries and the snapshots. It reads everything; run it offline.
func Verify(l eventlog.Store) (*VerifyReport, error) {
	seed := maphash.MakeSeed()
	st := l.State()
	r := &VerifyReport{LowWater: st.First}
	recs, err := newRecTable(st)
	if err != nil {
		return nil, err
	}
	zones := map[uint64]zone{}
	vc, err := loadVerifyCorrections(l, r)
	if err != nil {
		return nil, err
	}

	it, err := l.NewIter([]byte{'L'}, []byte{'L' + 1})
	if err != nil {
		return nil, err
	}
	var prev uint64
	var prevCreated int64
	for ok := it.First(); ok; ok = it.Next() {
		id := eventlog.KeyID(it.Key())
		if len(it.Key()) != 9 {
			r.add("log key %x has a bad length", it.Key())
			continue
		}
		if id <= prev {
			r.add("log id %d follows %d: ids not increasing", id, prev)
		}
		if id < st.First {
			r.add("log id %d is below the low-water id %d", id, st.First)
		}
		prev = id
		typ, ts, src, js, err := eventlog.SplitValue(it.Value())
		if err != nil {
			r.add("log id %d: %v", id, err)
			continue
		}
		if vocab.TypeName(typ) == "" {
			r.add("log id %d: unknown type code %d", id, typ)
		}
		want := `{"id":` + strconv.FormatUint(id, 10) + `,`
		if !bytes.HasPrefix(js, []byte(want)) {
			r.add("log id %d: stored JSON does not start with %s", id, want)
		}
		if c := eventlog.CreatedMs(js); c == 0 {
			r.add("log id %d: stored JSON has no valid created_at", id)
		} else if c < prevCreated {
			r.add("log id %d: created_at %d ms is before the previous record's %d ms", id, c, prevCreated)
		} else {
			prevCreated = c
		}
		recs.put(id, typ, ts, src, maphash.Bytes(seed, it.Value()))
		if h := vc.historyHash(seed, id, typ, js); h != 0 {
			recs.setHist(id, h)
		}
		if r.FirstID == 0 {
			r.FirstID = id
		}
		r.LastID = id
		r.Events++
		b := id / blockSize
		z := zones[b]
		if z.live == 0 {
			z.min, z.max = ts, ts
		}
		z.min, z.max = min(z.min, ts), max(z.max, ts)
		z.live++
		if vocab.IsDetection(typ) {
			z.det++
		}
		zones[b] = z
	}
	if err := it.Close(); err != nil {
		return nil, err
	}

	// Every index entry names a live record with matching fields, and each
	// index has exactly one entry per record.
	check := func(name string, lo, up []byte, parse func(k, v []byte) (uint64, func(recMeta) bool)) error {
		it, err := l.NewIter(lo, up)
		if err != nil {
			return err
		}
		defer it.Close()
		n := uint64(0)
		for ok := it.First(); ok; ok = it.Next() {
			id, okFn := parse(it.Key(), it.Value())
			m, live := recs.get(id)
			switch {
			case !live:
				r.add("%s index entry %x names id %d, which is not in the log", name, it.Key(), id)
			case okFn == nil || !okFn(m):
				r.add("%s index entry %x disagrees with record %d", name, it.Key(), id)
			default:
				n++
			}
		}
		if n != r.Events {
			r.add("%s index has %d valid entries for %d records", name, n, r.Events)
		}
		return it.Error()
	}
	idOf := func(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }
	if err := check("type", []byte{'I', 'y'}, []byte{'I', 'y' + 1}, func(k, _ []byte) (uint64, func(recMeta) bool) {
		if len(k) != 11 {
			return 0, nil
		}
		return idOf(k), func(m recMeta) bool { return m.typ == k[2] }
	}); err != nil {
		return nil, err
	}
	if err := check("time", []byte{'I', 't'}, []byte{'I', 't' + 1}, func(k, v []byte) (uint64, func(recMeta) bool) {
		if len(k) != 18 || len(v) != 1 {
			return 0, nil
		}
		ts := int64(binary.BigEndian.Uint64(k[2:10]))
		return idOf(k), func(m recMeta) bool { return m.ts == ts && m.typ == v[0] }
	}); err != nil {
		return nil, err
	}
	if err := check("source", []byte{'I', 's'}, []byte{'I', 's' + 1}, func(k, v []byte) (uint64, func(recMeta) bool) {
		if len(k) < 11 || k[len(k)-9] != 0 {
			return 0, nil
		}
		src := string(k[2 : len(k)-9])
		if len(v) == 0 {
			// No copy (keys mode, or written before the index was covering):
			// queries read the record from the log.
			r.UncoveredSource++
			return idOf(k), func(m recMeta) bool { return recs.source(m) == src }
		}
		sum := maphash.Bytes(seed, v)
		return idOf(k), func(m recMeta) bool { return recs.source(m) == src && m.sum == sum }
	}); err != nil {
		return nil, err
	}

	// Snapshots belong to live records.
	it, err = l.NewIter([]byte{'P'}, []byte{'P' + 1})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		id := eventlog.KeyID(it.Key())
		if _, live := recs.get(id); !live {
			r.add("snapshot %d has no record", id)
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}

	if err := verifyIdentities(l, r, recs, vc, seed); err != nil {
		return nil, err
	}

	// Block summaries: exact live counts, bounds that cover every record.
	it, err = l.NewIter([]byte{eventlog.FamSummary}, []byte{eventlog.FamSummary + 1})
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		b := binary.BigEndian.Uint64(it.Key()[1:])
		z, err := decodeZone(it.Value())
		if err != nil {
			r.add("block %d summary: %v", b, err)
			continue
		}
		seen[b] = true
		want := zones[b]
		if z.live != want.live {
			r.add("block %d summary counts %d live records, the log has %d", b, z.live, want.live)
		} else if z.det != want.det {
			r.add("block %d summary counts %d live detections, the log has %d", b, z.det, want.det)
		} else if want.live > 0 && (z.min > want.min || z.max < want.max) {
			r.add("block %d summary ts range [%d,%d] does not cover its records [%d,%d]", b, z.min, z.max, want.min, want.max)
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	for b, z := range zones {
		if !seen[b] {
			r.add("block %d holds %d records but has no summary", b, z.live)
		}
	}
	if r.FirstID != 0 && r.FirstID < st.First {
		r.add("first record %d is below the low-water id %d", r.FirstID, st.First)
	}
	return r, nil
}
