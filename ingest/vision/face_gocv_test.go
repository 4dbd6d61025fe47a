//go:build gocv

package vision

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/securevision/events/internal/vocab"
)

// megamindFrames returns the frames of Megamind.avi with the given indexes
// (BGR); the caller closes them.
func megamindFrames(t testing.TB, idx ...int) map[int]gocv.Mat {
	t.Helper()
	want := map[int]bool{}
	for _, i := range idx {
		want[i] = true
	}
	vc, err := gocv.VideoCaptureFile(sample(t, "Megamind.avi"))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	out := map[int]gocv.Mat{}
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; len(out) < len(want) && vc.Read(&m); i++ {
		if want[i] {
			out[i] = m.Clone()
		}
	}
	t.Cleanup(func() {
		for _, f := range out {
			f.Close()
		}
	})
	return out
}

func span(from, to, step int) []int {
	var s []int
	for i := from; i <= to; i += step {
		s = append(s, i)
	}
	return s
}

// Megamind.avi shows two animated characters: Roxanne in frames 0–95 and
// 150–185, a man with glasses ("hal") in 100–145 and 200–265 (frames
// inspected by eye). The gallery is enrolled from one stretch and tested on
// another.
var (
	roxanneEnrol = span(10, 65, 5)
	roxanneHeld  = span(155, 180, 5)
	halEnrol     = span(200, 225, 5)
	halHeld      = span(240, 260, 5)
)

func writeGallery(t testing.TB, frames map[int]gocv.Mat, people map[string][]int) string {
	t.Helper()
	dir := t.TempDir()
	for name, idx := range people {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, i := range idx {
			if !gocv.IMWrite(filepath.Join(dir, name, fmt.Sprintf("frame%03d.jpg", i)), frames[i]) {
				t.Fatalf("write gallery frame %d", i)
			}
		}
	}
	return dir
}

func TestFaceDetectMessi(t *testing.T) {
	_, a := newTestPipeline(t, Options{}, nil)
	img := gocv.IMRead(sample(t, "messi5.jpg"), gocv.IMReadGrayScale)
	defer img.Close()
	faces := detectFaces(&a.face, img, faceMinSize)
	t.Logf("messi5.jpg %dx%d: faces %v", img.Cols(), img.Rows(), faces)
	if len(faces) == 0 {
		t.Fatal("no face found in messi5.jpg")
	}
	// The face is in the upper middle of the picture (checked by eye).
	if c := faces[0].Min.Add(faces[0].Max).Div(2); !c.In(image.Rect(230, 50, 340, 160)) {
		t.Errorf("largest face centred at %v, want inside (230,50)-(340,160)", c)
	}
}

func TestFaceDetectMegamind(t *testing.T) {
	_, a := newTestPipeline(t, Options{}, nil)
	idx := span(10, 260, 10)
	frames := megamindFrames(t, idx...)
	gray := gocv.NewMat()
	defer gray.Close()
	found := 0
	for _, i := range idx {
		gocv.CvtColor(frames[i], &gray, gocv.ColorBGRToGray)
		if len(detectFaces(&a.face, gray, faceMinSize)) > 0 {
			found++
		}
	}
	t.Logf("Megamind.avi: a face in %d of %d sampled frames", found, len(idx))
	if found < len(idx)*3/4 {
		t.Fatalf("faces in %d of %d frames, want ≥ 75%%", found, len(idx))
	}
}

// bestFace returns the recognition of the largest face in frame.
func bestFace(t testing.TB, a *analyser, frame gocv.Mat) (faceHit, bool) {
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(frame, &gray, gocv.ColorBGRToGray)
	hits := a.faces(gray)
	if len(hits) == 0 {
		return faceHit{}, false
	}
	return hits[0], true
}

func TestRecognise(t *testing.T) {
	all := append(append(append(append([]int{}, roxanneEnrol...), roxanneHeld...), halEnrol...), halHeld...)
	frames := megamindFrames(t, all...)
	dir := writeGallery(t, frames, map[string][]int{"roxanne": roxanneEnrol, "hal": halEnrol})
	p, a := newTestPipeline(t, Options{GalleryDir: dir}, nil)
	if g := p.gallery.Load(); g.persons != 2 || len(g.descs) != len(roxanneEnrol)+len(halEnrol) {
		t.Fatalf("gallery: %d persons, %d images", g.persons, len(g.descs))
	}

	check := func(name string, idx []int) (minSim float64) {
		minSim, ok, total := 1.0, 0, 0
		for _, i := range idx {
			h, found := bestFace(t, a, frames[i])
			if !found {
				continue
			}
			total++
			t.Logf("frame %d: %s similarity %.3f distance %.3f", i, h.name, h.sim, *h.dist)
			if h.name == name {
				ok++
				minSim = min(minSim, h.sim)
			}
		}
		t.Logf("%s held out: %d of %d recognised", name, ok, total)
		if total == 0 || ok*10 < total*8 {
			t.Errorf("%s: %d of %d held-out faces recognised, want ≥ 80%%", name, ok, total)
		}
		return minSim
	}
	check("roxanne", roxanneHeld)
	check("hal", halHeld)

	img := gocv.IMRead(sample(t, "messi5.jpg"), gocv.IMReadColor)
	defer img.Close()
	h, found := bestFace(t, a, img)
	if !found {
		t.Fatal("no face in messi5.jpg")
	}
	t.Logf("messi: %s similarity %.3f distance %.3f (threshold %.2f)", h.name, h.sim, *h.dist, p.opts.Threshold)
	if h.name != "unknown" {
		t.Errorf("messi recognised as %q, want unknown", h.name)
	}
}

// TestDetectImageEvents runs Detect end to end on a still image: one
// face_match event for the stranger, with bbox and a JPEG snapshot.
func TestDetectImageEvents(t *testing.T) {
	sink := &memSink{}
	st, err := Detect(context.Background(), DetectOptions{
		Source:  Source{ID: "cam", URL: sample(t, "messi5.jpg")},
		Options: Options{Logger: quietLogger(t), PlateCascade: NoCascade},
	}, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := sink.events()
	t.Logf("summary: %+v", st)
	if len(evs) == 0 || evs[0].Type != vocab.FaceMatch {
		t.Fatalf("events: %+v", evs)
	}
	e := evs[0]
	if e.Face.PersonName != "unknown" || e.Face.EmbeddingDistance != nil || e.Source != "cam" || e.TsMs <= 0 {
		t.Errorf("event %+v face %+v", e, e.Face)
	}
	if b := e.Face.BBox; !(b[0] < b[2] && b[1] < b[3]) {
		t.Errorf("bbox %v", b)
	}
	if len(e.Snapshot) < 100 || e.Snapshot[0] != 0xFF || e.Snapshot[1] != 0xD8 {
		t.Errorf("snapshot is not a JPEG (%d bytes)", len(e.Snapshot))
	}
}
