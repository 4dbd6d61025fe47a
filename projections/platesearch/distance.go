package platesearch

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/securevision/events/internal/vocab"
)

const (
	// MaxQueryLen bounds a query's characters after normalisation,
	// wildcards included: twice the longest plate_text, so any real query
	// fits, while one search's work (query length × trie nodes) stays
	// bounded.
	MaxQueryLen = 64
	// MaxQueryBytes bounds the raw query before it is normalised, so a
	// huge parameter is refused before it is read rune by rune. Every
	// character takes at most 4 bytes in UTF-8; the slack is for
	// separators.
	MaxQueryBytes = 1024
	// MaxDistance is the largest max distance a search accepts. A larger
	// bound than the longest query could reach adds nothing, and the
	// bound in half edits must stay a small integer.
	MaxDistance = 64.0
)

// Errors of a search's parameters; an API answers them as invalid input.
var (
	ErrEmptyQuery   = errors.New("platesearch: the query has no letter, digit or wildcard")
	ErrQueryTooLong = fmt.Errorf("platesearch: the query is longer than %d characters", MaxQueryLen)
	ErrMaxDistance  = fmt.Errorf("platesearch: max distance must be a multiple of 0.5 from 0 to %g", MaxDistance)
	ErrLimit        = errors.New("platesearch: limit must be at least 1")
)

// Costs in half edits.
const (
	costConfusion = 1
	costEdit      = 2
)

// Query tokens: a letter or digit is itself; the wildcards are negative,
// which no rune of a string can be.
const (
	anyOne rune = -1 // '?'
	anyRun rune = -2 // '*'
)

// confusion maps an ASCII character to its usual OCR confusion (0 for
// none). The pairs are disjoint, so the relation is symmetric by
// construction.
var confusion = func() (t [128]byte) {
	for _, p := range []string{"O0", "I1", "B8", "S5", "Z2"} {
		t[p[0]], t[p[1]] = p[1], p[0]
	}
	return t
}()

// subCost is the cost in half edits of matching query token t with plate
// character c.
func subCost(t, c rune) int32 {
	switch {
	case t == c || t == anyOne:
		return 0
	case t >= 0 && t < 128 && c >= 0 && c < 128 && confusion[t] == byte(c):
		return costConfusion
	}
	return costEdit
}

// normRune is Normalise of one rune: the rune to keep (upper-cased) and
// whether to keep it.
func normRune(r rune) (rune, bool) {
	if r < utf8.RuneSelf {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A', true
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r, true
		}
		return 0, false
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return unicode.ToUpper(r), true
	}
	return 0, false
}

// Normalise returns the identity of a plate: plate upper-cased, with
// every character that is not a letter or a digit dropped (see the
// package doc). It is idempotent.
//
// It is vocab.NormalizePlate, the plate identity of the projections and
// the watchlists; normRune is the same rule for one rune (TestNormalise
// checks that they agree).
func Normalise(plate string) string { return vocab.NormalizePlate(plate) }

// Pattern is a parsed query. The zero Pattern is not valid; make one with
// ParseQuery.
type Pattern struct {
	toks []rune
	text string
}

// ParseQuery normalises a query: letters and digits as Normalise does,
// '*' and '?' kept as wildcards (a run of '*' as one), everything else
// dropped. It fails with ErrQueryTooLong or ErrEmptyQuery.
func ParseQuery(q string) (Pattern, error) {
	if len(q) > MaxQueryBytes {
		return Pattern{}, ErrQueryTooLong
	}
	toks := make([]rune, 0, min(len(q), MaxQueryLen+1))
	for _, r := range q {
		var t rune
		switch r {
		case '*':
			if len(toks) > 0 && toks[len(toks)-1] == anyRun {
				continue
			}
			t = anyRun
		case '?':
			t = anyOne
		default:
			n, ok := normRune(r)
			if !ok {
				continue
			}
			t = n
		}
		if len(toks) == MaxQueryLen {
			return Pattern{}, ErrQueryTooLong
		}
		toks = append(toks, t)
	}
	if len(toks) == 0 {
		return Pattern{}, ErrEmptyQuery
	}
	var b strings.Builder
	for _, t := range toks {
		switch t {
		case anyOne:
			b.WriteByte('?')
		case anyRun:
			b.WriteByte('*')
		default:
			b.WriteRune(t)
		}
	}
	return Pattern{toks: toks, text: b.String()}, nil
}

// String returns the normalised query, wildcards included.
func (p Pattern) String() string { return p.text }

// Distance returns the distance from the query to plate, compared as it
// is given (pass Normalise(plate) for a raw read). Index answers agree
// with it; Scan is the brute-force search with it.
func (p Pattern) Distance(plate string) float64 {
	var buf [2 * (MaxQueryLen + 1)]int32
	return float64(p.halves(plate, buf[:])) / 2
}

// halves is Distance in half edits; buf holds at least two rows.
func (p Pattern) halves(plate string, buf []int32) int32 {
	w := len(p.toks) + 1
	row, next := buf[:w], buf[w:2*w]
	firstRow(p.toks, row)
	for _, c := range plate {
		nextRow(p.toks, row, next, c)
		row, next = next, row
	}
	return row[w-1]
}

// Distance parses query and returns its distance to Normalise(plate).
func Distance(query, plate string) (float64, error) {
	p, err := ParseQuery(query)
	if err != nil {
		return 0, err
	}
	return p.Distance(Normalise(plate)), nil
}

// halfEdits converts a max distance to half edits.
func halfEdits(maxDist float64) (int32, error) {
	h := maxDist * 2
	if math.IsNaN(h) || h < 0 || h > MaxDistance*2 || h != math.Trunc(h) {
		return 0, ErrMaxDistance
	}
	return int32(h), nil
}

// The edit-distance table has one row per plate prefix (i characters)
// and one column per query prefix (j tokens): row[j] is the cheapest
// alignment of the first j tokens with the first i characters.

// firstRow fills the row of the empty plate prefix: the query's first j
// tokens all deleted, '*' matching the empty run for free.
func firstRow(toks []rune, row []int32) {
	row[0] = 0
	for j, t := range toks {
		c := int32(costEdit)
		if t == anyRun {
			c = 0
		}
		row[j+1] = row[j] + c
	}
}

// nextRow computes into cur the row after prev for plate character c and
// returns its smallest cell.
func nextRow(toks []rune, prev, cur []int32, c rune) int32 {
	cur[0] = prev[0] + costEdit // c inserted before the query
	low := cur[0]
	for j, t := range toks {
		var v int32
		if t == anyRun {
			// The run either ends before c (cur[j]) or takes c too
			// (prev[j+1]), for free.
			v = min(cur[j], prev[j+1])
		} else {
			v = min(prev[j]+subCost(t, c), // t aligned with c
				prev[j+1]+costEdit, // c inserted
				cur[j]+costEdit)    // t deleted
		}
		cur[j+1] = v
		low = min(low, v)
	}
	return low
}
