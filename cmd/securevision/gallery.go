package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest/vision"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/vocab"
)

// galleryDebounce is how long the gallery reloader waits after a change
// before it re-enrols: an operator adding several faces in a row costs
// one reload, and a change still reaches the recogniser well within a
// second.
const galleryDebounce = 200 * time.Millisecond

// galleryWiring feeds the vision recogniser the store's face gallery
// (POST /people/{name}/faces) beside GALLERY_DIR, and re-enrols it after
// every gallery change without a restart: a commit-bus subscriber spots
// gallery_change (and erasure) events and signals a reloader goroutine,
// which waits galleryDebounce and calls Pipeline.Reload. The subscriber
// runs on the commit goroutine, so it only signals, never blocks.
type galleryWiring struct {
	vis    *visionWiring
	kick   chan struct{}
	logger *slog.Logger
}

// newGalleryWiring wires the store gallery into vis before vis.attach
// builds the pipeline, so the first enrolment includes it; nil when no
// camera source is configured (nothing would use the gallery).
func newGalleryWiring(st *core.Core, vis *visionWiring, logger *slog.Logger) *galleryWiring {
	if len(vis.opts.Sources) == 0 {
		return nil
	}
	g := &galleryWiring{vis: vis, kick: make(chan struct{}, 1), logger: logger}
	vis.opts.StoreGallery = storeGallery(st)
	st.Subscribe(g.notify) // for the server's lifetime; a signal after the reloader stopped is dropped
	return g
}

// storeGallery reads every current gallery image from the store.
func storeGallery(st *core.Core) func() ([]vision.GalleryImage, error) {
	return func() ([]vision.GalleryImage, error) {
		var out []vision.GalleryImage
		for _, name := range st.View().GalleryPeople() {
			for _, f := range st.View().GalleryFaces(name) {
				b, err := st.Log().Snapshot(f.FaceID)
				if errors.Is(err, eventlog.ErrNotFound) {
					continue // erased since the list was read
				}
				if err != nil {
					return nil, err
				}
				out = append(out, vision.GalleryImage{ID: f.FaceID, Person: name, JPEG: b, Crop: f.FromEvent != nil})
			}
		}
		return out, nil
	}
}

// notify is the commit-bus subscriber (commit goroutine): a non-blocking
// signal when the batch changes the gallery.
func (g *galleryWiring) notify(b eventlog.Batch) {
	for i := range b.Entries {
		if t := b.Entries[i].Type; t == vocab.GalleryChangeCode || t == vocab.ErasureCode {
			select {
			case g.kick <- struct{}{}:
			default: // a reload is pending already
			}
			return
		}
	}
}

// start runs the reloader until ctx is done.
func (g *galleryWiring) start(ctx context.Context, wg *sync.WaitGroup) {
	if g == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.run(ctx)
	}()
}

func (g *galleryWiring) run(ctx context.Context) {
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		}
		t.Reset(galleryDebounce)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The changes signalled while waiting are in the projection
		// already (it applies a batch before the bus delivers it): this
		// reload covers them.
		select {
		case <-g.kick:
		default:
		}
		if err := g.vis.pipeline.Reload(); err != nil {
			g.logger.Error("reload gallery after a gallery change", "err", err)
		}
	}
}
