package platesearch

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/securevision/events/ingest/watchlist"
)

// The brute-force reference the index is checked against, written apart
// from the package's code: the normalisation is ingest/watchlist's, the
// confusion pairs a map, and the distance a memoised top-down recursion
// over (query token, plate character) in float halves rather than the
// package's row-by-row table in integers.

// refPairs are the OCR confusions, both directions spelt out.
var refPairs = map[[2]rune]bool{
	{'O', '0'}: true, {'0', 'O'}: true,
	{'I', '1'}: true, {'1', 'I'}: true,
	{'B', '8'}: true, {'8', 'B'}: true,
	{'S', '5'}: true, {'5', 'S'}: true,
	{'Z', '2'}: true, {'2', 'Z'}: true,
}

// refQuery is the reference query normalisation: '*' and '?' kept, every
// other rune as the watchlist normalises plates. It returns the tokens as
// strings ("*", "?" or one character) and whether the query is valid
// (the error it should fail with otherwise).
func refQuery(q string) ([]string, error) {
	if len(q) > MaxQueryBytes {
		return nil, ErrQueryTooLong
	}
	var toks []string
	for _, r := range q {
		switch {
		case r == '*':
			if len(toks) == 0 || toks[len(toks)-1] != "*" {
				toks = append(toks, "*")
			}
		case r == '?':
			toks = append(toks, "?")
		default:
			if n := watchlist.Normalize(string(r)); n != "" {
				toks = append(toks, n)
			}
		}
	}
	switch {
	case len(toks) == 0:
		return nil, ErrEmptyQuery
	case len(toks) > MaxQueryLen:
		return nil, ErrQueryTooLong
	}
	return toks, nil
}

// refDistance is the least weighted edit distance between plate and any
// text the query tokens match.
func refDistance(toks []string, plate string) float64 {
	p := []rune(plate)
	// memo[i][j] is d(i, j), -1 until computed.
	memo := make([][]float64, len(toks)+1)
	for i := range memo {
		memo[i] = slices.Repeat([]float64{-1}, len(p)+1)
	}
	var d func(i, j int) float64
	d = func(i, j int) float64 {
		if v := memo[i][j]; v >= 0 {
			return v
		}
		var v float64
		switch {
		case i == len(toks):
			v = float64(len(p) - j) // the rest of the plate inserted
		case toks[i] == "*":
			v = d(i+1, j) // '*' matches nothing more
			if j < len(p) {
				v = min(v, d(i, j+1)) // '*' takes p[j]
			}
		case j == len(p):
			v = 1 + d(i+1, j) // the token deleted
		default:
			sub := 1.0
			t, _ := utf8.DecodeRuneInString(toks[i])
			switch {
			case toks[i] == "?" || t == p[j]:
				sub = 0
			case refPairs[[2]rune{t, p[j]}]:
				sub = 0.5
			}
			v = min(sub+d(i+1, j+1), 1+d(i+1, j), 1+d(i, j+1))
		}
		memo[i][j] = v
		return v
	}
	return d(0, 0)
}

// refRanked scans every plate of set and returns them all with their
// distances, closest first, ties by text.
func refRanked(set map[string]bool, q string) ([]Hit, error) {
	toks, err := refQuery(q)
	if err != nil {
		return nil, err
	}
	var out []Hit
	for p := range set {
		out = append(out, Hit{Plate: p, Distance: refDistance(toks, p)})
	}
	slices.SortFunc(out, func(a, b Hit) int {
		if a.Distance != b.Distance {
			if a.Distance < b.Distance {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Plate, b.Plate)
	})
	return out, nil
}

// refCut is the answer of a search from the ranked plates.
func refCut(ranked []Hit, maxDist float64, limit int) []Hit {
	var out []Hit
	for _, h := range ranked {
		if h.Distance > maxDist || len(out) == limit {
			break
		}
		out = append(out, h)
	}
	return out
}

// refSearch is the brute-force search.
func refSearch(set map[string]bool, q string, maxDist float64, limit int) ([]Hit, error) {
	ranked, err := refRanked(set, q)
	return refCut(ranked, maxDist, limit), err
}
