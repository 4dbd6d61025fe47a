// Package platesearchtest makes the plate-search workload that the
// package's Go benchmarks and bench/cmd/benchall measure: realistic
// distinct plates and the queries operators type for them. It is
// deterministic for a seed and depends on nothing of the service.
package platesearchtest

import (
	"math/rand/v2"
	"strings"
)

// Query kinds, in the order of Kinds.
const (
	Exact      = "exact"      // a plate as seen, max distance 0
	OneEdit    = "one_edit"   // one character wrong, missing or extra, max distance 1
	Confusable = "confusable" // one or two OCR confusions, max distance 1
	Prefix     = "prefix"     // the first two or three characters then '*' ("AB*"), max distance 0
	Pattern    = "pattern"    // '?', four characters, '*' ("?BC12*"), max distance 1
	Suffix     = "suffix"     // '*' then the last three or four characters ("*123"), max distance 0.5
	Infix      = "infix"      // '*' three characters '*' ("*C12*"), max distance 0: nothing to prune on
)

// Kinds lists the query kinds; Queries deals them round-robin.
var Kinds = []string{Exact, OneEdit, Confusable, Prefix, Pattern, Suffix, Infix}

// Query is one search of the workload.
type Query struct {
	Kind    string
	Text    string
	MaxDist float64
}

// formats are plate layouts of several countries: 'L' a letter, 'D' a
// digit, anything else itself (separators that normalisation drops).
var formats = []string{
	"DLLLDDD",   // US (California)
	"LLLDDDD",   // US
	"LLDD LLL",  // UK
	"LL-DDD-LL", // France
	"L-LL DDDD", // Germany
	"LL-DDDD",   // Germany, short
	"DDD LLL",   // short
	"LLLDD",     // vanity-ish
	"LL DDDDD",  // other
}

const (
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits  = "0123456789"
)

// Plates returns n distinct plates, already normalised (upper case,
// separators dropped), in a random order.
func Plates(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x5ca1ab1e))
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	var b strings.Builder
	for len(out) < n {
		b.Reset()
		for _, c := range formats[r.IntN(len(formats))] {
			switch c {
			case 'L':
				b.WriteByte(letters[r.IntN(len(letters))])
			case 'D':
				b.WriteByte(digits[r.IntN(len(digits))])
			}
		}
		p := b.String()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// confusion is the OCR confusion of a character, 0 for none.
var confusion = map[byte]byte{'O': '0', '0': 'O', 'I': '1', '1': 'I', 'B': '8', '8': 'B', 'S': '5', '5': 'S', 'Z': '2', '2': 'Z'}

// Queries returns n queries over plates (which must be non-empty and
// hold plates of at least five characters), the kinds of Kinds in turn.
func Queries(plates []string, n int, seed uint64) []Query {
	r := rand.New(rand.NewPCG(seed, seed^0xfeedface))
	out := make([]Query, 0, n)
	for i := range n {
		p := []byte(plates[r.IntN(len(plates))])
		q := Query{Kind: Kinds[i%len(Kinds)]}
		switch q.Kind {
		case Exact:
			q.Text = string(p)
		case OneEdit:
			q.MaxDist = 1
			j := r.IntN(len(p))
			switch r.IntN(3) {
			case 0:
				p[j] = (letters + digits)[r.IntN(36)]
			case 1:
				p = append(p[:j], p[j+1:]...)
			default:
				p = append(p[:j], append([]byte{(letters + digits)[r.IntN(36)]}, p[j:]...)...)
			}
			q.Text = string(p)
		case Confusable:
			q.MaxDist = 1
			changed := 0
			for _, j := range r.Perm(len(p)) {
				if c, ok := confusion[p[j]]; ok && changed < 2 {
					p[j] = c
					changed++
				}
			}
			if changed == 0 { // no confusable character: make one up
				p[r.IntN(len(p))] = 'O'
			}
			q.Text = string(p)
		case Prefix:
			q.Text = string(p[:2+r.IntN(2)]) + "*"
		case Pattern:
			q.MaxDist = 1
			q.Text = "?" + string(p[1:5]) + "*"
		case Suffix:
			q.MaxDist = 0.5
			q.Text = "*" + string(p[len(p)-3-r.IntN(2):])
		case Infix:
			j := r.IntN(len(p) - 2)
			q.Text = "*" + string(p[j:j+3]) + "*"
		}
		out = append(out, q)
	}
	return out
}
