package projections

import (
	"encoding/json"
	"sync"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections/platesearch"
)

// plateSearch keeps the search index of the distinct plates in the plate
// history ('I' 'h'). The index is built on the first search from the
// history's distinct plates, one seek each, and then follows the commits:
// Committed queues the plates of each durable batch (pending) and a search
// adds them first. Retention makes it stale (a plate whose reads all
// expired must disappear), and the next search rebuilds it. A plate the
// index still holds after its last read went (a correction moved it) is
// dropped from the answers: every hit is checked against its history.
type plateSearch struct {
	// build serialises rebuilds.
	build sync.Mutex
	mu    struct {
		sync.Mutex
		idx      *platesearch.Index // nil: stale
		building bool
		pending  []string
	}
}

// notePlates queues the plates a durable batch adds (commit goroutine).
// Until a search builds the index there is nothing to queue, and the batch
// is not read: a build that starts later reads the batch from the store.
func (v *View) notePlates(b eventlog.Batch) {
	ps := &v.plates
	ps.mu.Lock()
	active := ps.mu.idx != nil || ps.mu.building
	ps.mu.Unlock()
	if !active {
		return
	}
	var names []string
	for i := range b.Entries {
		e := &b.Entries[i]
		switch e.Type {
		case vocab.PlateReadCode:
			if s, ok := payloadString(e.JSON, `"plate_text":`); ok {
				names = append(names, vocab.NormalizePlate(s))
			}
		case vocab.CorrectionCode:
			var p struct {
				Payload correctionPayload `json:"payload"`
			}
			if json.Unmarshal(e.JSON, &p) == nil && p.Payload.PlateText != nil {
				names = append(names, vocab.NormalizePlate(*p.Payload.PlateText))
			}
		}
	}
	if len(names) == 0 {
		return
	}
	ps.mu.Lock()
	if ps.mu.idx != nil || ps.mu.building {
		ps.mu.pending = append(ps.mu.pending, names...)
	}
	ps.mu.Unlock()
}

// stalePlates drops the index: the next search rebuilds it.
func (v *View) stalePlates() {
	v.plates.mu.Lock()
	v.plates.mu.idx = nil
	v.plates.mu.Unlock()
}

// plateIndex returns the up-to-date index, building it when stale.
func (v *View) plateIndex() (*platesearch.Index, error) {
	ps := &v.plates
	ps.mu.Lock()
	if idx := ps.mu.idx; idx != nil {
		pend := ps.mu.pending
		ps.mu.pending = nil
		ps.mu.Unlock()
		for _, p := range pend {
			idx.Add(p)
		}
		return idx, nil
	}
	ps.mu.Unlock()
	ps.build.Lock()
	defer ps.build.Unlock()
	ps.mu.Lock()
	if ps.mu.idx != nil { // built while this one waited
		ps.mu.Unlock()
		return v.plateIndex()
	}
	ps.mu.building, ps.mu.pending = true, nil
	ps.mu.Unlock()
	idx := platesearch.NewIndex()
	err := v.names('h', func(name string) (bool, error) {
		idx.Add(name)
		return true, nil
	})
	ps.mu.Lock()
	ps.mu.building = false
	if err == nil {
		ps.mu.idx = idx
	}
	ps.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return v.plateIndex()
}

// PlateHit is one answer of SearchPlates.
type PlateHit struct {
	PlateText string  `json:"plate_text"`
	Distance  float64 `json:"distance"`
	Aggregate
	ListMatch *string `json:"list_match"`
}

// SearchPlates finds the plates seen (retained reads, by corrected text)
// within maxDist of q (see package platesearch for the distance and the
// wildcards), nearest first, at most limit. match gives a plate's
// watchlist verdict ("" for none); nil leaves list_match null.
func (v *View) SearchPlates(q string, maxDist float64, limit int, match func(string) string) ([]PlateHit, error) {
	pat, err := platesearch.ParseQuery(q)
	if err != nil {
		return nil, err
	}
	idx, err := v.plateIndex()
	if err != nil {
		return nil, err
	}
	out := []PlateHit{}
	// Ask for more than limit: hits whose reads are gone are dropped.
	hits, err := idx.SearchPattern(pat, maxDist, limit+16)
	if err != nil {
		return nil, err
	}
	for _, h := range hits {
		if len(out) == limit {
			break
		}
		a, err := v.aggregate('h', h.Plate)
		if err != nil {
			return nil, err
		}
		if a.Count == 0 {
			continue
		}
		ph := PlateHit{PlateText: h.Plate, Distance: h.Distance, Aggregate: a}
		if match != nil {
			if m := match(h.Plate); m != "" {
				ph.ListMatch = &m
			}
		}
		out = append(out, ph)
	}
	return out, nil
}
