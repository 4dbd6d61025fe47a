package platesearch

import (
	"slices"
	"strings"
	"sync"
)

// Hit is one plate found by a search.
type Hit struct {
	// Plate is the normalised plate text.
	Plate string
	// Distance is the plate's distance from the query, a multiple of 0.5.
	Distance float64
}

// Index is the set of plates searched. The zero value is not ready; use
// NewIndex.
type Index struct {
	mu struct {
		sync.RWMutex
		// plates is the trie of the plates; sfx the trie of their
		// suffixes, whose nodes list the suffixes ending there in ends.
		plates trie
		sfx    trie
		ends   suffixes
		// slot maps a plate to its index in text and base, which the
		// tries refer to; free holds the slots of removed plates.
		slot map[string]int32
		text []string
		// base is the first of a slot's entries in ends.
		base []int32
		free []int32
	}
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	x := &Index{}
	x.mu.plates.init()
	x.mu.sfx.init()
	x.mu.ends.init()
	x.mu.slot = map[string]int32{}
	return x
}

// Add adds Normalise(plate) to the set and reports whether it was new. A
// plate that normalises to nothing is not added.
func (x *Index) Add(plate string) bool {
	p := Normalise(plate)
	if p == "" {
		return false
	}
	rs := []rune(p)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.mu.slot[p]; ok {
		return false
	}
	var s int32
	if n := len(x.mu.free); n > 0 {
		s = x.mu.free[n-1]
		x.mu.free = x.mu.free[:n-1]
	} else {
		s = int32(len(x.mu.text))
		x.mu.text = append(x.mu.text, "")
		x.mu.base = append(x.mu.base, 0)
	}
	x.mu.slot[p] = s
	x.mu.text[s] = p
	n := x.mu.plates.insert(rs)
	x.mu.plates.nodes[n].val = s + 1
	b := x.mu.ends.alloc(len(rs))
	x.mu.base[s] = b
	for k := range rs {
		n := x.mu.sfx.insert(rs[k:])
		x.mu.ends.link(&x.mu.sfx, n, b+int32(k), s)
	}
	x.mu.plates.maybeCompact()
	x.mu.sfx.maybeCompact()
	return true
}

// Remove removes Normalise(plate) from the set and reports whether it
// was there.
func (x *Index) Remove(plate string) bool {
	p := Normalise(plate)
	x.mu.Lock()
	defer x.mu.Unlock()
	s, ok := x.mu.slot[p]
	if !ok {
		return false
	}
	rs := []rune(p)
	path := make([]int32, 0, len(rs)+1)
	path = x.mu.plates.path(rs, path)
	x.mu.plates.nodes[path[len(path)-1]].val = 0
	x.mu.plates.prune(path)
	b := x.mu.base[s]
	for k := range rs {
		path = x.mu.sfx.path(rs[k:], path)
		x.mu.ends.unlink(&x.mu.sfx, path[len(path)-1], b+int32(k))
		x.mu.sfx.prune(path)
	}
	x.mu.ends.free[len(rs)] = append(x.mu.ends.free[len(rs)], b)
	delete(x.mu.slot, p)
	x.mu.text[s] = ""
	x.mu.free = append(x.mu.free, s)
	return true
}

// Has reports whether Normalise(plate) is in the set.
func (x *Index) Has(plate string) bool {
	p := Normalise(plate)
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.mu.slot[p]
	return ok
}

// Len returns the number of plates in the set.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.mu.slot)
}

// Search returns up to limit plates within maxDist of query q, closest
// first, ties by plate text. It fails with the errors of ParseQuery,
// ErrMaxDistance (maxDist negative, not a multiple of 0.5, or above
// MaxDistance) or ErrLimit (limit below 1).
func (x *Index) Search(q string, maxDist float64, limit int) ([]Hit, error) {
	p, err := ParseQuery(q)
	if err != nil {
		return nil, err
	}
	return x.SearchPattern(p, maxDist, limit)
}

// SearchPattern is Search with a parsed query.
func (x *Index) SearchPattern(p Pattern, maxDist float64, limit int) ([]Hit, error) {
	bound, err := checkParams(p, maxDist, limit)
	if err != nil {
		return nil, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := searcher{toks: p.toks, text: x.mu.text, bound: bound, limit: limit}
	t := &x.mu.plates
	switch {
	case len(p.toks) > 1 && p.toks[0] == anyRun:
		// "*R" is at the distance of R from the plate's closest suffix:
		// walk the suffixes with R, which prunes on R's first tokens.
		s.toks = p.toks[1:]
		s.ends, s.best = x.mu.ends.e, map[int32]int32{}
		t = &x.mu.sfx
	case len(p.toks) > 1 && p.toks[0] == anyOne && p.toks[1] != anyRun:
		// "?R" is at the distance of R from the plate without its first
		// character: walk the suffixes with R, counting only those that
		// start at the second character.
		s.toks = p.toks[1:]
		s.ends, s.best = x.mu.ends.e, map[int32]int32{}
		s.second, s.base = true, x.mu.base
		t = &x.mu.sfx
	default:
		s.ordered = true
	}
	s.width = len(s.toks) + 1
	s.nodes = t.nodes
	s.rows = make([]int32, (t.depth+2)*s.width)
	firstRow(s.toks, s.rows[:s.width])
	s.walk(0, 0)
	if d := s.rows[s.width-1]; s.second && d <= s.bound {
		// A plate of one character has no suffix from the second one:
		// its rest is empty, at the cost of deleting R.
		for c := x.mu.plates.nodes[0].child; c != 0; c = x.mu.plates.nodes[c].next {
			if v := x.mu.plates.nodes[c].val; v != 0 {
				s.best[v-1] = d
			}
		}
	}
	for slot, d := range s.best {
		s.offer(hit{plate: s.text[slot], dist: d})
	}
	return s.result(), nil
}

// Scan is the brute-force search: the distance from p to each of plates
// (compared as given), the answer ordered and cut as Search's. It is
// what the index is measured against, and a check of it.
func Scan(plates []string, p Pattern, maxDist float64, limit int) ([]Hit, error) {
	bound, err := checkParams(p, maxDist, limit)
	if err != nil {
		return nil, err
	}
	s := searcher{bound: bound, limit: limit}
	var buf [2 * (MaxQueryLen + 1)]int32
	for _, pl := range plates {
		if d := p.halves(pl, buf[:]); d <= s.bound {
			s.offer(hit{plate: pl, dist: d})
		}
	}
	return s.result(), nil
}

// result returns the hits kept, in order.
func (s *searcher) result() []Hit {
	slices.SortFunc(s.hits, cmpHit)
	out := make([]Hit, len(s.hits))
	for i, e := range s.hits {
		out[i] = Hit{Plate: e.plate, Distance: float64(e.dist) / 2}
	}
	return out
}

// checkParams validates a search's parameters and returns the bound in
// half edits.
func checkParams(p Pattern, maxDist float64, limit int) (int32, error) {
	bound, err := halfEdits(maxDist)
	switch {
	case err != nil:
		return 0, err
	case limit < 1:
		return 0, ErrLimit
	case len(p.toks) == 0:
		return 0, ErrEmptyQuery
	}
	return bound, nil
}

// hit is a search result in half edits.
type hit struct {
	plate string
	dist  int32
}

func cmpHit(a, b hit) int {
	if a.dist != b.dist {
		return int(a.dist - b.dist)
	}
	return strings.Compare(a.plate, b.plate)
}

// searcher is one search's state: the query, one DP row per trie level
// (rows[d*width:(d+1)*width] is the row of the node at depth d being
// visited), and the best hits so far as a max-heap by cmpHit.
type searcher struct {
	toks  []rune
	width int
	nodes []node
	text  []string
	rows  []int32
	bound int32
	limit int
	hits  []hit
	// ordered: the walk meets plates in text order (the plate trie), so
	// once limit hits are kept a later plate must be strictly closer
	// than the worst of them to get in.
	ordered bool
	// In the suffix trie, ends are the suffix lists and best the least
	// distance of each plate met so far (a plate has many suffixes).
	ends []suffix
	best map[int32]int32
	// second: count only the suffixes from a plate's second character
	// (the k-th suffix of a slot is entry base[slot]+k).
	second bool
	base   []int32
}

// walk visits the children of node n, whose row is at depth d.
func (s *searcher) walk(n int32, d int) {
	w := s.width
	prev := s.rows[d*w : (d+1)*w]
	cur := s.rows[(d+1)*w : (d+2)*w]
	var buf [8]rune
	want, all := s.wanted(prev, buf[:0])
	for c := s.nodes[n].child; c != 0; c = s.nodes[c].next {
		nd := &s.nodes[c]
		if !all && !slices.Contains(want, nd.r) {
			continue
		}
		low := nextRow(s.toks, prev, cur, nd.r)
		if low > s.bound {
			continue
		}
		if dist := cur[w-1]; nd.val != 0 && dist <= s.bound {
			if s.best == nil {
				s.offer(hit{plate: s.text[nd.val-1], dist: dist})
			} else {
				for e := nd.val; e != 0; e = s.ends[e].next {
					slot := s.ends[e].slot
					if s.second && e != s.base[slot]+1 {
						continue
					}
					if old, ok := s.best[slot]; !ok || dist < old {
						s.best[slot] = dist
					}
				}
			}
		}
		// offer may have lowered the bound.
		if nd.child != 0 && low <= s.bound {
			s.walk(c, d+1)
		}
	}
}

// wanted tells which children of a node whose row is prev can stay
// within the bound, so that the walk computes no row for the others (most
// nodes a search meets are such children, at the edge of the region it
// explores). Every cell of a child's row is one of these seeds plus
// further costs: prev[0]+1 edit; for a '*' column its cell of prev; for
// another column its cell of prev plus 1 edit (an insertion), and the
// previous column's cell of prev plus the substitution cost of the child's
// character. Only the last depend on the character: when no other seed is
// within the bound, a child can be only if its character is a token (or
// its confusion) of a column whose previous cell is within the bound. all
// reports that no character can be excluded; otherwise want lists the
// characters that may be (appended to buf).
func (s *searcher) wanted(prev []int32, buf []rune) (want []rune, all bool) {
	// (The seed prev[0]+1 edit needs no test of its own: the first
	// column's tests below cover it, as a '*' cell is at most its left
	// neighbour.)
	for j, t := range s.toks {
		if t == anyRun {
			if prev[j+1] <= s.bound {
				return nil, true
			}
			continue
		}
		if prev[j+1]+costEdit <= s.bound {
			return nil, true
		}
		switch p := prev[j]; {
		case p > s.bound:
		case t == anyOne || p+costEdit <= s.bound || len(buf)+2 > cap(buf):
			return nil, true
		default:
			buf = append(buf, t)
			if p+costConfusion <= s.bound && t < 128 && confusion[t] != 0 {
				buf = append(buf, rune(confusion[t]))
			}
		}
	}
	return buf, false
}

// offer keeps h if it is among the best limit hits, and once there are
// limit hits lowers the bound to what can still get in.
func (s *searcher) offer(h hit) {
	if len(s.hits) < s.limit {
		s.hits = append(s.hits, h)
		s.up(len(s.hits) - 1)
	} else {
		if cmpHit(h, s.hits[0]) >= 0 {
			return
		}
		s.hits[0] = h
		s.down(0)
	}
	if len(s.hits) == s.limit {
		worst := s.hits[0].dist
		if s.ordered {
			worst--
		}
		s.bound = min(s.bound, worst)
	}
}

func (s *searcher) up(i int) {
	h := s.hits
	for i > 0 {
		p := (i - 1) / 2
		if cmpHit(h[i], h[p]) <= 0 {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (s *searcher) down(i int) {
	h := s.hits
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		if r := l + 1; r < len(h) && cmpHit(h[r], h[l]) > 0 {
			l = r
		}
		if cmpHit(h[l], h[i]) <= 0 {
			return
		}
		h[i], h[l] = h[l], h[i]
		i = l
	}
}
