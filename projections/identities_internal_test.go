package projections

import "testing"

// TestMarkedGrows: marks survive the bitmap's growth, and only marked ids
// read as marked.
func TestMarkedGrows(t *testing.T) {
	ids := newIdentities()
	want := map[uint64]bool{}
	for _, id := range []uint64{0, 1, 63, 64, 1000, 5, 1 << 20, 129, 1<<20 + 1} {
		ids.mark(id)
		want[id] = true
		for probe := range uint64(1<<20 + 70) {
			if probe > 2000 && probe < 1<<20-5 {
				continue
			}
			if ids.marked(probe) != want[probe] {
				t.Fatalf("after marking %d: marked(%d) = %v", id, probe, !want[probe])
			}
		}
	}
}
