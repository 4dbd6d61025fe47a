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

// The face gallery: which images the recogniser enrols for each person.
// Each change is a gallery_change event (an operator's action, never
// expired by retention); an add event carries its image as the record's
// blob, so the image lives, is backed up and is replicated with the log,
// and GET /events/{face_id}/snapshot.jpg serves it. A face's id is the id
// of the event that added it.
//
// The projection is small (operators' images), in memory, rebuilt at
// Attach from the type index and kept current by Committed, as the
// watchlists are (watch.go).

// GalleryChange is the payload of a gallery_change event.
type GalleryChange struct {
	// Op is "add" or "remove".
	Op         string `json:"op"`
	PersonName string `json:"person_name"`
	// FaceID is the face a remove takes away: its add event's id. An add
	// has none (its own id is the face's).
	FaceID uint64 `json:"face_id,omitempty"`
	// FromEvent is the face_match an add was cropped from; nil for an
	// uploaded image.
	FromEvent *uint64 `json:"from_event,omitempty"`
}

// GalleryFace is one image in a person's gallery.
type GalleryFace struct {
	// FaceID is the id of the gallery_change that added it; the image is
	// that event's snapshot.
	FaceID    uint64 `json:"face_id"`
	CreatedAt string `json:"created_at"`
	// FromEvent is the face_match it was cropped from, nil (JSON null)
	// for an upload.
	FromEvent *uint64 `json:"from_event"`
}

// galleryState is the gallery projection: each person's current faces in
// face id order. Writers are Attach and the commit goroutine (Committed),
// and erasure (forgetGallery); readers are the API and the recogniser's
// reload.
type galleryState struct {
	mu     sync.RWMutex
	people map[string][]GalleryFace
}

func newGalleryState() *galleryState {
	return &galleryState{people: map[string][]GalleryFace{}}
}

// apply applies one gallery_change record's JSON. A remove of a face the
// gallery does not hold (removed twice, or erased) changes nothing.
func (g *galleryState) apply(js []byte) error {
	var e struct {
		ID        uint64        `json:"id"`
		CreatedAt string        `json:"created_at"`
		Payload   GalleryChange `json:"payload"`
	}
	if err := json.Unmarshal(js, &e); err != nil {
		return err
	}
	name := e.Payload.PersonName
	g.mu.Lock()
	defer g.mu.Unlock()
	faces := g.people[name]
	switch e.Payload.Op {
	case "add":
		// Ids only grow, so appending keeps the face id order.
		g.people[name] = append(faces, GalleryFace{FaceID: e.ID, CreatedAt: e.CreatedAt, FromEvent: e.Payload.FromEvent})
	case "remove":
		faces = slices.DeleteFunc(faces, func(f GalleryFace) bool { return f.FaceID == e.Payload.FaceID })
		if len(faces) == 0 {
			delete(g.people, name)
		} else {
			g.people[name] = faces
		}
	default:
		return fmt.Errorf("unknown op %q", e.Payload.Op)
	}
	return nil
}

// loadGallery replays the gallery_change events in id order.
func (v *View) loadGallery(l eventlog.Store) (int, error) {
	return replayActions(l, vocab.GalleryChangeCode, v.gallery.apply)
}

// replayActions calls apply with the JSON of every record of an action
// type (watchlist_change, gallery_change) in id order, as the type index
// names them: retention never deletes these, so the index is their whole
// history. It returns how many it applied.
func replayActions(l eventlog.Store, code uint8, apply func(js []byte) error) (int, error) {
	it, err := l.NewIter(typeKey(code, 0), typeKey(code+1, 0))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		id := indexID(it.Key())
		val, err := l.Get(id)
		if err != nil {
			continue // erased or above the watermark
		}
		_, _, _, js, err := eventlog.SplitValue(val)
		if err != nil {
			return n, err
		}
		if err := apply(js); err != nil {
			return n, fmt.Errorf("projections: %s %d: %w", vocab.TypeName(code), id, err)
		}
		n++
	}
	return n, it.Error()
}

// committedGallery applies a durable batch's gallery changes (commit
// goroutine).
func (v *View) committedGallery(b eventlog.Batch) {
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Type != vocab.GalleryChangeCode {
			continue
		}
		if err := v.gallery.apply(e.JSON); err != nil {
			v.logger.Error("gallery_change not applied", "id", e.ID, "err", err)
		}
	}
}

// GalleryFaces returns name's current gallery faces in face id order (a
// new slice; nil when there are none).
func (v *View) GalleryFaces(name string) []GalleryFace {
	v.gallery.mu.RLock()
	defer v.gallery.mu.RUnlock()
	return slices.Clone(v.gallery.people[name])
}

// GalleryPeople returns the names that have gallery faces, sorted.
func (v *View) GalleryPeople() []string {
	v.gallery.mu.RLock()
	names := make([]string, 0, len(v.gallery.people))
	for n := range v.gallery.people {
		names = append(names, n)
	}
	v.gallery.mu.RUnlock()
	slices.SortFunc(names, strings.Compare)
	return names
}

// forgetGallery drops name's gallery from memory (erasure, after it
// deleted the gallery_change events and their images).
func (v *View) forgetGallery(name string) {
	v.gallery.mu.Lock()
	delete(v.gallery.people, name)
	v.gallery.mu.Unlock()
}
