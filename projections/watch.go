package projections

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// WatchChange is the payload of a watchlist_change event.
type WatchChange struct {
	// Op is "add" or "remove".
	Op string `json:"op"`
	// List is vocab.Whitelist or vocab.Blacklist.
	List string `json:"list"`
	// Plate is the plate as the operator gave it, normalised
	// (vocab.NormalizePlate).
	Plate string `json:"plate"`
	Note  string `json:"note,omitempty"`
}

// WatchEntry is the API's word on one plate of one list: the newest
// watchlist_change for its matching key (vocab.PlateKey).
type WatchEntry struct {
	Plate     string `json:"plate"`
	Note      string `json:"note"`
	Present   bool   `json:"-"`
	ID        uint64 `json:"event_id"`
	CreatedAt string `json:"updated_at"`
}

// watchState is the watchlist projection: per list, per matching key, the
// newest change. It is small (operators' entries), in memory, rebuilt at
// Attach from the type index and kept by Committed.
type watchState struct {
	mu sync.RWMutex
	// lists[vocab.Whitelist][key], lists[vocab.Blacklist][key]
	lists map[string]map[string]WatchEntry
}

func newWatchState() *watchState {
	return &watchState{lists: map[string]map[string]WatchEntry{vocab.Whitelist: {}, vocab.Blacklist: {}}}
}

// applyWatch applies one watchlist_change record's JSON.
func (w *watchState) apply(js []byte) error {
	var e struct {
		ID        uint64      `json:"id"`
		CreatedAt string      `json:"created_at"`
		Payload   WatchChange `json:"payload"`
	}
	if err := json.Unmarshal(js, &e); err != nil {
		return err
	}
	l, ok := w.lists[e.Payload.List]
	if !ok {
		return fmt.Errorf("unknown list %q", e.Payload.List)
	}
	w.mu.Lock()
	l[vocab.PlateKey(e.Payload.Plate)] = WatchEntry{
		Plate: e.Payload.Plate, Note: e.Payload.Note, Present: e.Payload.Op == "add",
		ID: e.ID, CreatedAt: e.CreatedAt,
	}
	w.mu.Unlock()
	return nil
}

// loadWatch replays the watchlist_change events.
func (v *View) loadWatch(l eventlog.Store) (int, error) {
	return replayActions(l, vocab.WatchlistChangeCode, v.watch.apply)
}

// WatchOverride reports the API's word on key (vocab.PlateKey) for list:
// ok is false when the API never changed it (the files decide).
func (v *View) WatchOverride(list, key string) (present, ok bool) {
	v.watch.mu.RLock()
	defer v.watch.mu.RUnlock()
	e, ok := v.watch.lists[list][key]
	return e.Present, ok
}

// WatchEntries lists the plates the API put on list (not those it
// removed), by plate.
func (v *View) WatchEntries(list string) []WatchEntry {
	v.watch.mu.RLock()
	var out []WatchEntry
	for _, e := range v.watch.lists[list] {
		if e.Present {
			out = append(out, e)
		}
	}
	v.watch.mu.RUnlock()
	slices.SortFunc(out, func(a, b WatchEntry) int { return strings.Compare(a.Plate, b.Plate) })
	return out
}
