package platesearch

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/securevision/events/ingest/watchlist"
)

func TestDistanceExamples(t *testing.T) {
	for _, c := range []struct {
		q, plate string
		want     float64
	}{
		{"ABC1234", "ABC1234", 0},
		{"abc-12 34", "ABC1234", 0},
		{"ABC1284", "ABC1234", 1},   // 8 for 3: a plain substitution
		{"ABC1Z34", "ABC1234", 0.5}, // Z for 2: a confusion
		{"A8C1O5", "ABC105", 1},     // 8/B and O/0
		{"S5", "5S", 1},             // both directions
		{"I1", "1I", 1},
		{"ABC", "ABCD", 1},  // insertion
		{"ABCD", "ABC", 1},  // deletion
		{"ABC", "XYZ", 3},   // three substitutions
		{"ABC", "", 3},      // only deletions (Distance of an empty plate)
		{"AB*", "AB", 0},    // '*' matches nothing
		{"AB*", "ABXYZ", 0}, // or anything
		{"AB*", "XBXYZ", 1},
		{"*123", "XY123", 0},
		{"*123", "XY1Z3", 0.5},
		{"A*1*2", "AQQ1QQ2", 0},
		{"?BC12*", "XBC12", 0},
		{"?BC12*", "XBC12999", 0},
		{"?BC12*", "BC12", 1}, // the '?' deleted
		{"?BC12*", "XYBC12", 1},
		{"??", "A", 1},
		{"*", "ANYTHING", 0},
		{"**?**", "A", 0},
		{"ÄÖ12", "äö12", 0},
		{"ΑΒΓ", "ΑΒΔ", 1}, // Greek Β is not the Latin B of the confusion pairs
		{"ABC", "ΑBC", 1}, // nor is Greek Α the Latin A
	} {
		got, err := Distance(c.q, c.plate)
		if err != nil || got != c.want {
			t.Errorf("Distance(%q, %q) = %v, %v; want %v", c.q, c.plate, got, err, c.want)
		}
		toks, _ := refQuery(c.q)
		if ref := refDistance(toks, watchlist.Normalize(c.plate)); ref != c.want {
			t.Errorf("reference distance(%q, %q) = %v; want %v", c.q, c.plate, ref, c.want)
		}
	}
}

func TestNormalise(t *testing.T) {
	for in, want := range map[string]string{
		"ab-c 1O5":      "ABC1O5",
		" A.B/C_1\t2\n": "ABC12",
		"ав 123":        "АВ123",
		"*?":            "",
		"\xff\xfeAB":    "AB",
		"٣٤٥ xy":        "٣٤٥XY",
		"":              "",
	} {
		if got := Normalise(in); got != want {
			t.Errorf("Normalise(%q) = %q; want %q", in, got, want)
		}
	}
	// The product has one plate normalisation: the watchlist's.
	r := rand.New(rand.NewPCG(1, 2))
	pool := []rune("aAzZ09 -._/\t*?öÖßвВΑα٣\u0301\u200b€😀\ufffd")
	for range 5000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteRune(pool[r.IntN(len(pool))])
		}
		s := b.String()
		got := Normalise(s)
		if want := watchlist.Normalize(s); got != want {
			t.Fatalf("Normalise(%q) = %q; watchlist.Normalize = %q", s, got, want)
		}
		if again := Normalise(got); again != got {
			t.Fatalf("Normalise is not idempotent on %q: %q then %q", s, got, again)
		}
	}
}

// TestWatchlistAgreement: plates the watchlist treats as one entry (equal
// keys) are within half an edit per differing character of each other.
func TestWatchlistAgreement(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	classes := []string{"O0", "I1", "B8", "S5", "AA", "CC", "77"}
	for range 2000 {
		var a, b strings.Builder
		diff := 0
		for range 1 + r.IntN(8) {
			c := classes[r.IntN(len(classes))]
			x, y := c[r.IntN(2)], c[r.IntN(2)]
			a.WriteByte(x)
			b.WriteByte(y)
			if x != y {
				diff++
			}
		}
		if watchlist.Key(a.String()) != watchlist.Key(b.String()) {
			t.Fatalf("test bug: %q and %q have different watchlist keys", a.String(), b.String())
		}
		d, err := Distance(a.String(), b.String())
		if err != nil || d > 0.5*float64(diff) {
			t.Fatalf("Distance(%q, %q) = %v, %v; want at most %v", a.String(), b.String(), d, err, 0.5*float64(diff))
		}
	}
}

// TestMetric: between plain texts the distance is symmetric and obeys the
// triangle inequality, as the package doc says.
func TestMetric(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		a, b, c := randPlate(r), randPlate(r), randPlate(r)
		ab, _ := Distance(a, b)
		ba, _ := Distance(b, a)
		bc, _ := Distance(b, c)
		ac, _ := Distance(a, c)
		if ab != ba {
			t.Fatalf("d(%q,%q)=%v but d(%q,%q)=%v", a, b, ab, b, a, ba)
		}
		if ac > ab+bc {
			t.Fatalf("d(%q,%q)=%v > d(%q,%q)+d(%q,%q)=%v", a, c, ac, a, b, b, c, ab+bc)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("d(%q,%q)=%v", a, b, ab)
		}
	}
}

// confusable is the alphabet of the random plates: the confusion pairs
// appear far more often than in real plates, so half edits are common.
const (
	confusable = "O0I1B8S5Z2"
	others     = "ACDEFGHJKLMNPQRTUVWXY34679"
)

func randChar(r *rand.Rand) byte {
	if r.IntN(2) == 0 {
		return confusable[r.IntN(len(confusable))]
	}
	return others[r.IntN(len(others))]
}

// randPlate is a realistic plate: 2 to 8 letters and digits, and now
// and then a single character (the index must hold any plate).
func randPlate(r *rand.Rand) string {
	n := 2 + r.IntN(7)
	if r.IntN(20) == 0 {
		n = 1
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = randChar(r)
	}
	return string(b)
}

// randQuery derives a query from a plate of the set (or makes one up):
// edits, confusions, wildcards, separators and lower case.
func randQuery(r *rand.Rand, plates []string) string {
	var q []byte
	if len(plates) > 0 && r.IntN(5) > 0 {
		q = []byte(plates[r.IntN(len(plates))])
	} else {
		q = []byte(randPlate(r))
	}
	for range r.IntN(4) {
		i := r.IntN(len(q) + 1)
		switch r.IntN(6) {
		case 0: // substitute
			if i < len(q) {
				q[i] = randChar(r)
			}
		case 1: // confuse
			if i < len(q) {
				if j := strings.IndexByte(confusable, q[i]); j >= 0 {
					q[i] = confusable[j^1]
				}
			}
		case 2: // insert
			q = append(q[:i], append([]byte{randChar(r)}, q[i:]...)...)
		case 3: // delete
			if i < len(q) {
				q = append(q[:i], q[i+1:]...)
			}
		case 4: // '?' for a character
			if i < len(q) {
				q[i] = '?'
			}
		case 5: // '*' for a run (maybe empty)
			j := min(len(q), i+r.IntN(4))
			q = append(q[:i], append([]byte{'*'}, q[j:]...)...)
		}
	}
	s := string(q)
	switch r.IntN(5) { // a leading '*' (the suffix trie), or one at both ends
	case 0:
		s = "*" + s
	case 1:
		s = "*" + s + "*"
	}
	if r.IntN(4) == 0 {
		s = strings.ToLower(s)
	}
	if r.IntN(4) == 0 && len(s) > 1 {
		s = s[:1] + "-" + s[1:]
	}
	return s
}

var maxDists = []float64{0, 0.5, 1, 1.5, 2, 2.5, 3}

// checkAll compares every query at every max distance and a few limits
// with the brute-force scan of set.
func checkAll(t *testing.T, x *Index, set map[string]bool, queries []string) {
	t.Helper()
	for _, q := range queries {
		ranked, werr := refRanked(set, q)
		for _, md := range maxDists {
			for _, limit := range []int{1, 3, 20, 1 << 20} {
				got, err := x.Search(q, md, limit)
				want := refCut(ranked, md, limit)
				if !errors.Is(err, werr) || (err == nil) != (werr == nil) {
					t.Fatalf("Search(%q, %v, %d): error %v; reference %v", q, md, limit, err, werr)
				}
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Search(%q, %v, %d) over %d plates:\n got %v\nwant %v", q, md, limit, len(set), got, want)
				}
			}
		}
	}
}

func TestSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for round := range 4 {
		x := NewIndex()
		set := map[string]bool{}
		n := []int{0, 1, 30, 1500}[round]
		var plates []string
		for range n {
			p := randPlate(r)
			if x.Add(p) != !set[p] {
				t.Fatalf("Add(%q) reported the wrong novelty", p)
			}
			if !set[p] {
				plates = append(plates, p)
			}
			set[p] = true
		}
		if x.Len() != len(set) {
			t.Fatalf("Len = %d; want %d", x.Len(), len(set))
		}
		if n == 1500 && x.mu.sfx.placed == len(x.mu.sfx.nodes)-1 {
			t.Fatalf("%d suffix trie nodes and no compact: the test misses the re-laid-out trie", len(x.mu.sfx.nodes))
		}
		queries := make([]string, 60)
		for i := range queries {
			queries[i] = randQuery(r, plates)
		}
		checkAll(t, x, set, queries)

		// Remove a third (and some plates never added), re-add a few: the
		// answers follow.
		for i, p := range plates {
			if i%3 == 0 {
				if !x.Remove(p) {
					t.Fatalf("Remove(%q) = false for a present plate", p)
				}
				delete(set, p)
			}
		}
		if x.Remove("NOTSEEN1") || x.Remove("") {
			t.Fatal("Remove of an absent plate reported true")
		}
		for i, p := range plates {
			if i%9 == 0 {
				x.Add(strings.ToLower(p))
				set[p] = true
			}
		}
		for i := range queries {
			queries[i] = randQuery(r, plates)
		}
		checkAll(t, x, set, queries)
	}
}

// TestCompact: the tries lay themselves out again as they grow (and
// here on demand, after removals left holes); answers do not change.
func TestCompact(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := NewIndex()
	set := map[string]bool{}
	var plates []string
	for range 800 {
		p := randPlate(r)
		if x.Add(p) {
			plates = append(plates, p)
			set[p] = true
		}
	}
	for i, p := range plates {
		if i%2 == 0 {
			x.Remove(p)
			delete(set, p)
		}
	}
	queries := make([]string, 25)
	for i := range queries {
		queries[i] = randQuery(r, plates)
	}
	checkAll(t, x, set, queries)
	before := len(x.mu.sfx.nodes)
	x.mu.plates.compact()
	x.mu.sfx.compact()
	if after := len(x.mu.sfx.nodes); after >= before || len(x.mu.sfx.free) != 0 {
		t.Fatalf("compact kept %d of %d suffix nodes and %d free", after, before, len(x.mu.sfx.free))
	}
	checkAll(t, x, set, queries)
	// Removing and adding after a compact still works.
	for i, p := range plates {
		if i%4 == 0 {
			x.Add(p)
			set[p] = true
		} else if i%2 == 1 && i%3 == 0 {
			x.Remove(p)
			delete(set, p)
		}
	}
	checkAll(t, x, set, queries)
}

func TestSearchEdgeCases(t *testing.T) {
	x := NewIndex()
	for _, p := range []string{"AB123", "ab-124", "XYZ9", "ÄÖ12", "АВ123", "Q"} {
		x.Add(p)
	}
	if x.Add("") || x.Add(" -. ") {
		t.Fatal("a plate that normalises to nothing was added")
	}
	if !x.Has("a b 1 2 3") || x.Has("AB125") || x.Len() != 6 {
		t.Fatal("Has/Len disagree with the plates added")
	}
	search := func(q string, md float64, limit int) []Hit {
		t.Helper()
		h, err := x.Search(q, md, limit)
		if err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
		return h
	}
	// Only '*': every plate, all at 0, in text order, limited.
	got := search("*", 0, 4)
	want := []Hit{{"AB123", 0}, {"AB124", 0}, {"Q", 0}, {"XYZ9", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Search(*) = %v; want %v", got, want)
	}
	if got := search("***", 0, 100); len(got) != 6 {
		t.Fatalf("Search(***) found %d plates; want 6", len(got))
	}
	// Multi-byte characters are characters, not bytes.
	if got := search("äö1?", 0, 10); !reflect.DeepEqual(got, []Hit{{"ÄÖ12", 0}}) {
		t.Fatalf("Search(äö1?) = %v", got)
	}
	if got := search("ав12", 1, 10); !reflect.DeepEqual(got, []Hit{{"АВ123", 1}}) {
		t.Fatalf("Search(ав12) = %v", got)
	}
	// A leading '?' (searched among the suffixes from the second
	// character), down to a plate of one character.
	if got := search("?B", 1, 10); !reflect.DeepEqual(got, []Hit{{"Q", 1}}) {
		t.Fatalf("Search(?B, 1) = %v; want Q at 1 ('?' for Q, B deleted)", got)
	}
	if got := search("?B12?", 0, 10); !reflect.DeepEqual(got, []Hit{{"AB123", 0}, {"AB124", 0}}) {
		t.Fatalf("Search(?B12?) = %v", got)
	}
	// Closest first, then by text.
	if got := search("AB12Z", 1, 10); !reflect.DeepEqual(got, []Hit{{"AB123", 1}, {"AB124", 1}}) {
		t.Fatalf("Search(AB12Z) = %v", got)
	}
	// Remove, then search: gone from both directions of the index.
	x.Remove("AB-123")
	if got := search("AB123", 0, 10); len(got) != 0 {
		t.Fatalf("a removed plate was found: %v", got)
	}
	if got := search("*123", 0, 10); !reflect.DeepEqual(got, []Hit{{"АВ123", 0}}) {
		t.Fatalf("Search(*123) after Remove = %v; want only the Cyrillic АВ123", got)
	}
	x.Add("AB123")
	if got := search("*B123", 0, 10); !reflect.DeepEqual(got, []Hit{{"AB123", 0}}) {
		t.Fatalf("a re-added plate: %v", got)
	}

	// Bad parameters.
	for _, c := range []struct {
		q     string
		md    float64
		limit int
		want  error
	}{
		{"", 1, 10, ErrEmptyQuery},
		{" - . ", 1, 10, ErrEmptyQuery},
		{strings.Repeat("A", MaxQueryLen+1), 1, 10, ErrQueryTooLong},
		{strings.Repeat("-", MaxQueryBytes+1), 1, 10, ErrQueryTooLong},
		{"AB", -0.5, 10, ErrMaxDistance},
		{"AB", 0.3, 10, ErrMaxDistance},
		{"AB", math.NaN(), 10, ErrMaxDistance},
		{"AB", math.Inf(1), 10, ErrMaxDistance},
		{"AB", MaxDistance + 0.5, 10, ErrMaxDistance},
		{"AB", 1, 0, ErrLimit},
		{"AB", 1, -1, ErrLimit},
	} {
		if _, err := x.Search(c.q, c.md, c.limit); !errors.Is(err, c.want) {
			t.Errorf("Search(%.20q, %v, %d) = %v; want %v", c.q, c.md, c.limit, err, c.want)
		}
	}
	// The longest query is fine, and '*' runs count once.
	long := strings.Repeat("A", MaxQueryLen-1) + "**********"
	if _, err := x.Search(long, MaxDistance, 10); err != nil {
		t.Fatalf("Search of a %d-character query: %v", MaxQueryLen, err)
	}
	// An empty index.
	if got, err := NewIndex().Search("*", 3, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty index: %v, %v", got, err)
	}
}

// TestConcurrentSearch runs searches while a writer adds and removes
// plates: the plates that never change are always found exactly, and the
// race detector sees the lock rules.
func TestConcurrentSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := NewIndex()
	stable := map[string]bool{}
	for range 300 {
		p := "S" + randPlate(r) // churn plates start with C: disjoint
		stable[p] = true
		x.Add(p)
	}
	var churn []string
	for range 300 {
		churn = append(churn, "C"+randPlate(r))
	}
	queries := make([]string, 20)
	for i := range queries {
		queries[i] = "S" + randQuery(r, nil)
	}
	// The stable plates' answers, computed before the churn starts; with
	// a query starting S and max distance 1, a churn plate (starting C)
	// can still be within reach, so the check filters hits to stable ones.
	want := map[string][]Hit{}
	for _, q := range queries {
		want[q], _ = refSearch(stable, q, 1, 1<<20)
	}
	stop := make(chan struct{})
	var writer, searchers sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := churn[i%len(churn)]
			if i/len(churn)%2 == 0 {
				x.Add(p)
			} else {
				x.Remove(p)
			}
		}
	}()
	errc := make(chan error, 4)
	for w := range 4 {
		searchers.Add(1)
		go func() {
			defer searchers.Done()
			for i := range 200 {
				q := queries[(i+w)%len(queries)]
				got, err := x.Search(q, 1, 1<<20)
				if err != nil {
					errc <- err
					return
				}
				var only []Hit
				for _, h := range got {
					if stable[h.Plate] {
						only = append(only, h)
					} else if !strings.HasPrefix(h.Plate, "C") {
						errc <- fmt.Errorf("Search(%q) found %q, never added", q, h.Plate)
						return
					}
				}
				if len(only) != len(want[q]) || len(only) > 0 && !reflect.DeepEqual(only, want[q]) {
					errc <- fmt.Errorf("Search(%q) stable hits %v; want %v", q, only, want[q])
					return
				}
			}
		}()
	}
	searchers.Wait()
	close(stop)
	writer.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
