//go:build gocv

package vision

import (
	"errors"
	"sync"
	"testing"

	"gocv.io/x/gocv"
)

// TestStoreGallery: the store's gallery is enrolled beside GALLERY_DIR
// (uploads by their largest face, from_event crops whole), a Reload
// picks up additions and removals and enrols only new images, an
// undecodable image is skipped and counted, and a failing store keeps
// the previous gallery.
func TestStoreGallery(t *testing.T) {
	all := append(append(append(append([]int{}, roxanneEnrol...), roxanneHeld...), halEnrol...), halHeld...)
	frames := megamindFrames(t, all...)
	encode := func(m gocv.Mat) []byte {
		t.Helper()
		b, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		return append([]byte(nil), b.GetBytes()...)
	}
	var (
		mu    sync.Mutex
		store []GalleryImage
		fail  error
		calls int
	)
	opts := Options{StoreGallery: func() ([]GalleryImage, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return append([]GalleryImage(nil), store...), fail
	}}
	p, a := newTestPipeline(t, opts, nil)
	if g := p.gallery.Load(); len(g.descs) != 0 || calls != 1 {
		t.Fatalf("empty store: %d images, %d calls", len(g.descs), calls)
	}
	// Roxanne as uploaded frames; hal as face crops cut at the detected
	// box, as POST /people/{name}/faces {"from_event"} stores them.
	id := uint64(100)
	gray := gocv.NewMat()
	defer gray.Close()
	for _, i := range roxanneEnrol {
		id++
		store = append(store, GalleryImage{ID: id, Person: "roxanne", JPEG: encode(frames[i])})
	}
	for _, i := range halEnrol {
		gocv.CvtColor(frames[i], &gray, gocv.ColorBGRToGray)
		boxes := detectFaces(&a.face, gray, faceMinSize)
		if len(boxes) == 0 {
			continue
		}
		f := frames[i]
		crop := f.Region(boxes[0])
		id++
		store = append(store, GalleryImage{ID: id, Person: "hal", JPEG: encode(crop), Crop: true})
		crop.Close()
	}
	store = append(store, GalleryImage{ID: 1, Person: "broken", JPEG: []byte("not a jpeg")})
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	g := p.gallery.Load()
	if g.persons != 2 || len(g.descs) != len(store)-1 {
		t.Fatalf("gallery: %d persons, %d images, want 2 and %d", g.persons, len(g.descs), len(store)-1)
	}
	if n := counterValue(p.m.errors.WithLabelValues("gallery", errGallery)); n != 1 {
		t.Fatalf("gallery errors %v, want 1 (the broken image)", n)
	}
	recognised := func(name string, idx []int) (ok, total int) {
		for _, i := range idx {
			if h, found := bestFace(t, a, frames[i]); found {
				total++
				if h.name == name {
					ok++
				}
			}
		}
		return ok, total
	}
	for _, c := range []struct {
		name string
		idx  []int
	}{{"roxanne", roxanneHeld}, {"hal", halHeld}} {
		if ok, total := recognised(c.name, c.idx); total == 0 || ok*10 < total*8 {
			t.Errorf("%s: %d of %d held-out faces recognised, want ≥ 80%%", c.name, ok, total)
		}
	}
	// Remove hal: his faces are no longer recognised; Roxanne's
	// descriptors come from the cache (same slices, not re-enrolled).
	cached := p.enrol.store[store[0].ID]
	mu.Lock()
	store = store[:len(roxanneEnrol)]
	mu.Unlock()
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if g := p.gallery.Load(); g.persons != 1 || len(g.descs) != len(roxanneEnrol) || len(p.enrol.store) != len(roxanneEnrol) {
		t.Fatalf("after removing hal: %d persons, %d images, %d cached", g.persons, len(g.descs), len(p.enrol.store))
	}
	if &p.enrol.store[store[0].ID][0] != &cached[0] {
		t.Error("an unchanged image was enrolled again")
	}
	if ok, total := recognised("hal", halHeld); ok != 0 || total == 0 {
		t.Errorf("hal recognised %d of %d times after his removal", ok, total)
	}
	// A failing store keeps the gallery in force.
	before := p.gallery.Load()
	mu.Lock()
	fail = errors.New("store closed")
	mu.Unlock()
	if err := p.Reload(); err == nil || p.gallery.Load() != before {
		t.Fatalf("Reload with a failing store: %v", err)
	}
}
