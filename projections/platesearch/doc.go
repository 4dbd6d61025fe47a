// Package platesearch finds the plates seen whose text is close to what an
// operator half remembers: GET /search/plates. It is a pure in-memory
// library; the plate projection feeds it (Add for each new distinct plate,
// Remove when a plate's last read is gone) and rebuilds it on start.
//
// # Plate identity
//
// [Normalise] is the plate_text normalisation of the whole product, the
// same as ingest/watchlist's Normalize (a test holds them equal): letters
// are upper-cased, every character that is neither a letter nor a digit
// (spaces, dashes, dots, slashes, punctuation, symbols, combining marks)
// is dropped, and letters and digits of any script are kept as they are
// ("ab-c 12" and "AB C12" are the plate "ABC12"; Cyrillic "ав 123" is
// "АВ123", still Cyrillic). No script is folded into another and no
// Unicode normal form is applied: a camera reads one script, and a
// look-alike Cyrillic А and Latin A are different plates, as their
// registrations are.
//
// The watchlist additionally maps the OCR confusion classes O/0, I/1, B/8,
// S/5 to one key each for exact matching. Search does not merge them; it
// charges them half an edit (below), so "ABC105" and "A8C1O5" are
// different plates at distance 1.5 (three half edits), and a plate
// that equals a listed one under the watchlist key is always within half
// an edit per differing character of it.
//
// # Distance
//
// Costs are counted in half edits, as integers, so no float rounding ever
// decides a match; the API's max_distance (a float with 0.5 steps) is
// converted once. Between two texts, the weighted edit distance is the
// cheapest alignment of insertions (1), deletions (1) and substitutions:
// a character for itself costs 0, a character for its usual OCR confusion
// 0.5, in either direction,
//
//	O ↔ 0    I ↔ 1    B ↔ 8    S ↔ 5    Z ↔ 2
//
// and any other substitution 1. (These costs satisfy the triangle
// inequality — 0.5 + 1 ≥ 1 and the confusion pairs are disjoint — so
// between plain texts this is a metric.)
//
// A query is normalised like a plate, except that '*' and '?' are kept as
// wildcards (a run of '*' is one '*'). '?' stands for exactly one
// character and '*' for any run of characters, the empty run included.
// The distance from a query to a plate is the least weighted edit
// distance between the plate and any text the query matches: a wildcard
// matches at no cost, and a '?' that is left over is deleted at cost 1
// like any other character. So "AB*" is at 0 from every plate starting
// with AB, "?BC12*" at 0 from "XBC12" and at 1 from "BC12", and the query
// "ABC1Z34" at 0.5 from the plate "ABC1234".
//
// A query has at most [MaxQueryLen] characters after normalisation (and at
// most [MaxQueryBytes] bytes before it), far beyond any plate; a query
// that is longer, or that holds no letter, digit or wildcard, is an error.
//
// # Index
//
// Plates live in two character tries: the trie of the plates, and the trie
// of all their suffixes, whose nodes list (in a doubly linked list, so a
// plate leaves it in constant time) the suffixes of which plates end there.
// A search walks one trie depth first carrying one row of the
// edit-distance table per trie level (the row of a node is computed from
// its parent's row and the node's character, in O(query length)), and
// leaves a subtree as soon as the smallest cell of the row exceeds the
// bound: no cell of a deeper row can be smaller than the smallest cell of
// its parent's row. A node where a text ends reports it when the row's last
// cell is within the bound. This is Levenshtein-automaton search without
// building the automaton: the row is the automaton's state, and wildcards
// are two more kinds of column ('?' matches any character for free; '*' is
// a free self-loop that also matches nothing).
//
// The walk prunes on the query's tokens before its first '*'; after that
// every text is at the same cost from it. So a query that starts with '*'
// would visit the whole plate trie. Instead, "*R" is at the distance of R
// from the closest suffix of the plate, and the search walks the suffix
// trie with R: "*123" and "*C12*" prune on "123" and "C12" as "123*" does
// in the plate trie. (The empty suffix never does better than the last
// character: R starts with a token that is not '*'.) A plate reached
// through several suffixes counts at the least of their distances.
// Likewise "?R" (R not starting with '*') is at the distance of R from the
// plate without its first character — matching the '?' to it is never
// worse than deleting the '?' or inserting before it — so "?BC12*" walks
// the suffix trie with "BC12*" and counts only the suffixes that start at
// a plate's second character (a plate of one character counts at the
// cost of deleting R).
//
// A search keeps the best limit hits so far in a heap. In the plate trie
// the walk meets plates in text order, so once the heap is full a later
// plate must be strictly closer than the worst kept: the bound drops to
// just below it, and "*" alone or "AB*" stop after limit plates.
//
// Other structures were considered. A BK-tree needs a metric between the
// query and the plates, and a wildcard query is not a point of the space;
// n-gram postings need a verification pass and lose their filter for short
// queries and wildcards. The tries need neither.
//
// Cost: a search visits the trie nodes whose text is within the bound of a
// prefix of the query (of R), O(visited nodes × query length), which for a
// selective query does not grow with the number of plates. Queries that
// give the walk little to prune on, such as a large max_distance for the
// query's length or "??" and "?*" at the start, visit a large part of a
// trie, at a cost comparable to a scan of the plates. bench/cmd/benchall
// section platesearch measures a realistic mix against a scan. Add and
// Remove walk the plate's n suffixes, O(n² × alphabet) for sibling lists,
// small for plates.
// Nodes live in one slice per trie; a search computes a row for every
// child of each node it enters, so sibling lists scattered over the slice
// as plates arrive would cost a cache miss per child. Once the nodes
// allocated since the last time reach a quarter of the live ones, Add
// lays the trie out again in breadth-first order (each sibling list one
// contiguous run), O(nodes) under the write lock, O(1) amortised per Add.
// Memory: one 16-byte node per trie node (the suffix trie has about one
// node per distinct substring of the plates, which is of the order of their
// total length) and a 12-byte entry per plate character.
//
// Hits are ordered by distance, then by plate text (byte order of the
// UTF-8 text: digits before letters for ASCII plates).
//
// # Concurrency
//
// An Index is safe for concurrent use. Searches hold its read lock and run
// in parallel; Add and Remove hold its write lock, so they wait for the
// searches in progress and are serialised among themselves (an Add that
// re-lays a trie out holds it for that copy). Nothing outside the index is
// called with the lock held.
package platesearch
