package platesearch

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/securevision/events/ingest/watchlist"
)

// FuzzSearch checks the index against the brute-force reference on
// fuzzed plates (comma-separated, some removed again), queries, max
// distances and limits: the same hits, or the same error, never a panic.
func FuzzSearch(f *testing.F) {
	f.Add("ABC1234,ABC1284,A8C1O5,XYZ", "ABC1Z34", uint8(2), uint8(10), uint16(0))
	f.Add("AB123,AB124,QQ", "AB*", uint8(6), uint8(1), uint16(1))
	f.Add("XBC12,BC12,XYBC12999", "?BC12*", uint8(2), uint8(3), uint16(4))
	f.Add("ÄÖ12,АВ123,٣٤٥", "*12?", uint8(3), uint8(5), uint16(0))
	f.Add("a-b,A B", "", uint8(0), uint8(0), uint16(0))
	f.Add("S5,5S", "**", uint8(15), uint8(255), uint16(2))
	f.Add("AB1,AB2,XAB,B", "*B?", uint8(2), uint8(4), uint16(0x8001))
	f.Fuzz(func(t *testing.T, plates, q string, halves, limit uint8, removeMask uint16) {
		list := strings.Split(plates, ",")
		if len(list) > 64 {
			list = list[:64]
		}
		x := NewIndex()
		set := map[string]bool{}
		for _, p := range list {
			n := watchlist.Normalize(p)
			if added := x.Add(p); added != (n != "" && !set[n]) {
				t.Fatalf("Add(%q) = %v", p, added)
			}
			if n != "" {
				set[n] = true
			}
		}
		for i, p := range list {
			if removeMask>>(i%16)&1 == 1 {
				n := watchlist.Normalize(p)
				if removed := x.Remove(p); removed != set[n] {
					t.Fatalf("Remove(%q) = %v", p, removed)
				}
				delete(set, n)
			}
		}
		if removeMask&0x8000 != 0 { // lay the tries out again, as growth does
			x.mu.plates.compact()
			x.mu.sfx.compact()
		}
		if x.Len() != len(set) {
			t.Fatalf("Len = %d; want %d", x.Len(), len(set))
		}
		md := float64(halves%16) / 2
		got, err := x.Search(q, md, int(limit))
		want, werr := refSearch(set, q, md, int(limit))
		if werr == nil && limit == 0 {
			werr = ErrLimit
		}
		if (err == nil) != (werr == nil) || werr != nil && !errors.Is(err, werr) {
			t.Fatalf("Search(%q, %v, %d): error %v; want %v", q, md, limit, err, werr)
		}
		if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Fatalf("Search(%q, %v, %d) over %q:\n got %v\nwant %v", q, md, limit, list, got, want)
		}
	})
}
