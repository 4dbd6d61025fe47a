package platesearch

// node is a trie node in the arena trie.nodes; index 0 is the root, which
// is never a child, so 0 means "none" in child and next.
type node struct {
	r rune
	// child is the first child, next the next sibling; siblings are
	// sorted by r, so a depth-first walk meets texts in text order.
	child, next int32
	// val marks a text ending here: in the plate trie the plate's slot
	// plus one, in the suffix trie the first entry of the list of
	// suffixes ending here; 0 for none.
	val int32
}

// trie is a character trie whose nodes live in one slice (no pointers for
// the garbage collector to chase); removed nodes are reused.
type trie struct {
	nodes []node
	free  []int32
	// depth is at least the longest text ever inserted (it does not
	// shrink): searches size their DP rows by it.
	depth int
	// placed counts the nodes allocated since the last compact.
	placed int
}

func (t *trie) init() {
	t.nodes = []node{{}}
}

func (t *trie) alloc(r rune) int32 {
	t.placed++
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.nodes[i] = node{r: r}
		return i
	}
	t.nodes = append(t.nodes, node{r: r})
	return int32(len(t.nodes) - 1)
}

// insert makes the path of rs and returns its last node.
func (t *trie) insert(rs []rune) int32 {
	t.depth = max(t.depth, len(rs))
	n := int32(0)
	for _, r := range rs {
		// Find r among n's sorted children, or the place to link it in.
		prev, c := int32(0), t.nodes[n].child
		for c != 0 && t.nodes[c].r < r {
			prev, c = c, t.nodes[c].next
		}
		if c != 0 && t.nodes[c].r == r {
			n = c
			continue
		}
		m := t.alloc(r) // may move t.nodes: no pointers into it across
		t.nodes[m].next = c
		if prev == 0 {
			t.nodes[n].child = m
		} else {
			t.nodes[prev].next = m
		}
		n = m
	}
	return n
}

// path returns the nodes of rs's path, the root first, into buf; nil if
// rs is not in the trie.
func (t *trie) path(rs []rune, buf []int32) []int32 {
	buf = append(buf[:0], 0)
	n := int32(0)
	for _, r := range rs {
		c := t.nodes[n].child
		for c != 0 && t.nodes[c].r != r {
			c = t.nodes[c].next
		}
		if c == 0 {
			return nil
		}
		buf = append(buf, c)
		n = c
	}
	return buf
}

// prune frees the nodes at the end of path (from path) that no longer
// lead to a text, deepest first.
func (t *trie) prune(path []int32) {
	for i := len(path) - 1; i > 0; i-- {
		c := path[i]
		if t.nodes[c].child != 0 || t.nodes[c].val != 0 {
			return
		}
		parent := path[i-1]
		if t.nodes[parent].child == c {
			t.nodes[parent].child = t.nodes[c].next
		} else {
			s := t.nodes[parent].child
			for t.nodes[s].next != c {
				s = t.nodes[s].next
			}
			t.nodes[s].next = t.nodes[c].next
		}
		t.nodes[c] = node{}
		t.free = append(t.free, c)
	}
}

// suffix is an entry of a suffix trie node's list: one suffix of one
// plate. Entries are doubly linked so a plate leaves a list of any length
// in constant time; index 0 is a sentinel, so 0 means "none".
type suffix struct {
	slot       int32
	prev, next int32
}

// suffixes holds the entries. A plate of n characters owns the n
// consecutive entries from its base, the k-th for the suffix starting at
// its k-th character; blocks of removed plates are reused by length.
type suffixes struct {
	e    []suffix
	free map[int][]int32 // block length -> bases
}

func (s *suffixes) init() {
	s.e = []suffix{{}}
	s.free = map[int][]int32{}
}

func (s *suffixes) alloc(n int) int32 {
	if l := s.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		s.free[n] = l[:len(l)-1]
		return b
	}
	b := int32(len(s.e))
	s.e = append(s.e, make([]suffix, n)...)
	return b
}

// link puts entry e (of slot) at the head of node n's list.
func (s *suffixes) link(t *trie, n, e, slot int32) {
	h := t.nodes[n].val
	s.e[e] = suffix{slot: slot, next: h}
	if h != 0 {
		s.e[h].prev = e
	}
	t.nodes[n].val = e
}

// unlink takes entry e out of node n's list.
func (s *suffixes) unlink(t *trie, n, e int32) {
	x := s.e[e]
	if x.prev != 0 {
		s.e[x.prev].next = x.next
	} else {
		t.nodes[n].val = x.next
	}
	if x.next != 0 {
		s.e[x.next].prev = x.prev
	}
	s.e[e] = suffix{}
}

// compactMin is the fewest new nodes worth a compact: below it the
// layout matters little and the copy would dominate small tries.
const compactMin = 4096

// maybeCompact compacts the trie once the nodes placed since the last
// compact are a quarter of the live ones, so the copies cost O(1) per
// insert, amortised.
func (t *trie) maybeCompact() {
	if t.placed >= max(compactMin, (len(t.nodes)-len(t.free))/4) {
		t.compact()
	}
}

// compact lays the live nodes out again in breadth-first order. A walk
// computes a row for every child of the nodes it enters, and nodes
// allocated one at a time as plates arrive put siblings far apart in
// memory, a cache miss each; after a compact each sibling list is one
// contiguous run. Nothing outside the trie holds node indices (Remove
// finds paths by their characters), so the renumbering is invisible.
func (t *trie) compact() {
	old := t.nodes
	nodes := make([]node, 1, len(old)-len(t.free))
	nodes[0] = node{r: old[0].r, val: old[0].val}
	// Each queue item is a sibling list still to copy: its first node
	// in old, and the parent's index in nodes.
	type item struct{ first, parent int32 }
	queue := []item{{old[0].child, 0}}
	for i := 0; i < len(queue); i++ {
		it := queue[i]
		last := int32(0)
		for c := it.first; c != 0; c = old[c].next {
			n := int32(len(nodes))
			nodes = append(nodes, node{r: old[c].r, val: old[c].val})
			if last == 0 {
				nodes[it.parent].child = n
			} else {
				nodes[last].next = n
			}
			last = n
			if old[c].child != 0 {
				queue = append(queue, item{old[c].child, n})
			}
		}
	}
	t.nodes = nodes
	t.free = nil
	t.placed = 0
}
