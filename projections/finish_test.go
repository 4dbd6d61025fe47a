package projections_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/projections"
)

// keyRecorder is an eventlog.Writer that keeps copies of what it is given.
type keyRecorder struct{ keys [][]byte }

func (r *keyRecorder) Set(k, _ []byte) error {
	r.keys = append(r.keys, bytes.Clone(k))
	return nil
}
func (r *keyRecorder) Delete([]byte) error           { return nil }
func (r *keyRecorder) DeleteRange(_, _ []byte) error { return nil }

// TestFinishWritesIndexKeysInKeyOrder checks that Finish, which orders the
// entries by their fields instead of by their encoded keys, writes each
// batch's index keys in strictly increasing byte order, and every expected
// key once: sources that are prefixes of one another, every type, and
// out-of-order timestamps included.
func TestFinishWritesIndexKeysInKeyOrder(t *testing.T) {
	sources := []string{"cam", "cam_2", "cam 2", "camera_driveway", "a", "Z", "cam_1", "~"}
	rng := rand.New(rand.NewPCG(7, 11))
	v := projections.New(projections.Options{})
	id := uint64(1)
	for batch := range 20 {
		n := 1 + rng.IntN(300)
		if batch == 0 {
			n = 1
		}
		want := map[string]bool{}
		for range n {
			e := &eventlog.Entry{
				ID:     id,
				Type:   uint8(1 + rng.IntN(2)), // detections: their JSON is empty here, so no history keys
				TsMs:   1_700_000_000_000 + int64(id)*10 - int64(rng.IntN(5))*int64(rng.IntN(2))*1000,
				Source: sources[rng.IntN(len(sources))],
			}
			id++
			if err := v.Index(nil, e); err != nil {
				t.Fatal(err)
			}
			k := binary.BigEndian.AppendUint64(append([]byte{eventlog.FamIndex, 's'}, e.Source+"\x00"...), e.ID)
			want[string(k)] = true
			k = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{eventlog.FamIndex, 't'}, uint64(e.TsMs)), e.ID)
			want[string(k)] = true
			k = binary.BigEndian.AppendUint64([]byte{eventlog.FamIndex, 'y', e.Type}, e.ID)
			want[string(k)] = true
		}
		var rec keyRecorder
		if err := v.Finish(&rec); err != nil {
			t.Fatal(err)
		}
		var idx [][]byte
		for _, k := range rec.keys {
			if k[0] == eventlog.FamIndex {
				idx = append(idx, k)
			}
		}
		if len(idx) != len(want) {
			t.Fatalf("batch %d: %d index keys written, want %d", batch, len(idx), len(want))
		}
		for i, k := range idx {
			if !want[string(k)] {
				t.Fatalf("batch %d: unexpected key %q", batch, k)
			}
			if i > 0 && bytes.Compare(idx[i-1], k) >= 0 {
				t.Fatalf("batch %d: key %d %q not after %q", batch, i, k, idx[i-1])
			}
		}
	}
}
