package ingest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// appendFloat promises encoding/json's number text; integral values take
// a shortcut that must give the same digits.
func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 100, 1e15 - 1, -(1e15 - 1), 1e15, 1e20, 1e21, 0.5, -2.5, 0.92, 1e-6, 1e-7, 123456.789, 9007199254740993}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50000; i++ {
		vals = append(vals,
			float64(r.Int64N(1<<50)-1<<49),                       // integral, wide
			math.Trunc(r.NormFloat64()*2000),                     // integral, pixels
			r.Float64(),                                          // similarity
			r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20))) // any scale
	}
	for _, f := range vals {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Fatalf("appendFloat(%v) = %s, encoding/json gives %s", f, got, want)
		}
	}
}
