package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"slices"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Verify's checks of the identity views ('I' 'c', 'I' 'h', 'I' 'n'),
// against the log: the same history the projections would build from it.

// verifyCorrections reads the corrections family: per corrected
// detection, its newest correction's effect (what Verify expects the
// histories to follow), and the correction records it names.
type verifyCorrections struct {
	eff   map[uint64]correctionEffect
	pairs [][2]uint64 // (detection, correction)
}

func loadVerifyCorrections(l eventlog.Store, r *VerifyReport) (*verifyCorrections, error) {
	vc := &verifyCorrections{eff: map[uint64]correctionEffect{}}
	it, err := l.NewIter([]byte{eventlog.FamIndex, 'c'}, []byte{eventlog.FamIndex, 'c' + 1})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 18 {
			r.add("correction index key %x has a bad length", k)
			continue
		}
		target, corr := binary.BigEndian.Uint64(k[2:10]), binary.BigEndian.Uint64(k[10:])
		var p correctionPayload
		if err := json.Unmarshal(it.Value(), &p); err != nil || p.EventID != target {
			r.add("correction index entry %d/%d does not hold its correction", target, corr)
			continue
		}
		vc.eff[target] = p.effect()
		vc.pairs = append(vc.pairs, [2]uint64{target, corr})
	}
	return vc, it.Error()
}

// historyHash is what Verify keeps of a detection's expected history
// entry: a hash of its family and name, 0 for none.
func (vc *verifyCorrections) historyHash(seed maphash.Seed, id uint64, typ uint8, js []byte) uint64 {
	var fam byte
	var name string
	eff, corrected := vc.eff[id]
	switch {
	case corrected && eff.falsePositive:
		return 0
	case typ == vocab.FaceMatchCode:
		fam, name = 'n', eff.person
		if !corrected || name == "" {
			name, _ = payloadString(js, `"person_name":`)
		}
	case typ == vocab.PlateReadCode:
		fam = 'h'
		if corrected && eff.plate != "" {
			name = vocab.NormalizePlate(eff.plate)
		} else if s, ok := payloadString(js, `"plate_text":`); ok {
			name = vocab.NormalizePlate(s)
		}
		if name == "" {
			return 0
		}
	default:
		return 0
	}
	return maphash.String(seed, string(fam)+name) | 1
}

// verifyIdentities checks the correction pairs against the log and every
// history entry against its detection, and that each detection with an
// expected entry has exactly one.
func verifyIdentities(l eventlog.Store, r *VerifyReport, recs *recTable, vc *verifyCorrections, seed maphash.Seed) error {
	for _, p := range vc.pairs {
		if m, live := recs.get(p[0]); !live || !vocab.IsDetection(m.typ) {
			r.add("correction index names detection %d, which is not in the log", p[0])
		}
		if m, live := recs.get(p[1]); !live || m.typ != vocab.CorrectionCode {
			r.add("correction index names correction %d, which is not in the log", p[1])
		}
	}
	want := uint64(0)
	for i := range recs.slots {
		if recs.slots[i].live && recs.slots[i].hist != 0 {
			want++
		}
	}
	for _, m := range recs.extra {
		if m.hist != 0 {
			want++
		}
	}
	got := uint64(0)
	for _, fam := range []byte{'h', 'n'} {
		it, err := l.NewIter([]byte{eventlog.FamIndex, fam}, []byte{eventlog.FamIndex, fam + 1})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			k, v := it.Key(), it.Value()
			ts, name, src, valid := decodeHistoryValue(v)
			if len(k) != historyKeyLen || !valid {
				r.add("history entry %x is malformed", k)
				continue
			}
			id := indexID(k)
			m, live := recs.get(id)
			h := maphash.String(seed, string(fam)+string(name)) | 1
			switch {
			case !live:
				r.add("history entry %x names id %d, which is not in the log", k, id)
			case !bytes.Equal(k[2:2+nameHashLen], appendNameHash(nil, string(name))):
				r.add("history entry %x holds a name whose hash is not its key's", k)
			case m.hist != h:
				r.add("history entry %x disagrees with detection %d (its corrected name is another)", k, id)
			case ts != m.ts || recs.source(m) != string(src):
				r.add("history entry %x disagrees with detection %d's ts_ms or camera", k, id)
			default:
				got++
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	// A store not yet opened by a server that keeps the histories has
	// none for its older detections (Attach writes them once).
	it, err := l.NewIter(viewsVersionKey, append(slices.Clone(viewsVersionKey), 0))
	if err != nil {
		return err
	}
	marked := it.First() && len(it.Value()) == 8 && binary.BigEndian.Uint64(it.Value()) == viewsVersion
	if err := it.Close(); err != nil {
		return err
	}
	if got != want && marked {
		r.add("history has %d valid entries for %d detections that belong in one", got, want)
	}
	return nil
}
