//go:build gocv

package vision

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gocv.io/x/gocv"

	"github.com/securevision/events/internal/vocab"
)

const (
	// faceDetectWidth: frames wider than this are scaled down for Haar
	// detection. The cost of detectMultiScale grows with the pixel count,
	// so 480 px (was 640) saves much of it, and a face of 24 detection
	// pixels is still 38 px in a 768-px frame (64 px at 1280).
	faceDetectWidth = 480
	// faceMinSize is the smallest face searched, in detection pixels (the
	// 24×24 window of the frontal-face cascades): LBPH on a smaller crop
	// is noise.
	faceMinSize = 24
	// faceScaleFactor is the step between the scales searched. 1.15 and
	// 1.2 save a third to a half of the windows but lose faces between
	// the coarser scales (the large face of messi5.jpg, 3–5 of 26
	// Megamind frames, gallery images), so it stays 1.1.
	faceScaleFactor = 1.1
	// faceMinNeighbors: overlapping detections needed for a face.
	faceMinNeighbors = 4
	// galleryCropMax: a gallery image without a detectable face is taken
	// as a ready-made face crop only when it is at most this big on both
	// sides; a bigger one is a scene and is skipped with a warning.
	galleryCropMax = 300
)

// faceHit is one detected and recognised face in frame pixels.
type faceHit struct {
	box  image.Rectangle
	name string
	sim  float64
	dist *float64
}

// detectFaces runs the Haar cascade on gray (full-size grey frame) and
// returns boxes in gray's pixels, largest first.
func detectFaces(cc *gocv.CascadeClassifier, gray gocv.Mat, minSize int) []image.Rectangle {
	small := gocv.NewMat()
	defer small.Close()
	return detectFacesIn(cc, gray, minSize, &small, nil)
}

// motionPad is the margin, in frame pixels, searched around a moving
// region of a frame w pixels wide: two of the smallest faces searched.
func motionPad(w int) int {
	return 2 * faceMinSize * max(w, faceDetectWidth) / faceDetectWidth
}

// detectFacesIn is detectFaces with a caller-owned scratch Mat for the
// scaled, equalised frame (reused from frame to frame by an analyser),
// searching only inside regions (frame pixels) unless regions is nil.
// The frame is scaled and equalised as a whole either way, so a face is
// found the same in a region as in the whole frame.
func detectFacesIn(cc *gocv.CascadeClassifier, gray gocv.Mat, minSize int, small *gocv.Mat, regions []image.Rectangle) []image.Rectangle {
	scale := 1.0
	if gray.Cols() > faceDetectWidth {
		scale = float64(faceDetectWidth) / float64(gray.Cols())
		gocv.Resize(gray, small, image.Point{}, scale, scale, gocv.InterpolationArea)
	} else {
		gray.CopyTo(small)
	}
	gocv.EqualizeHist(*small, small)
	var rects []image.Rectangle
	if regions == nil {
		rects = cc.DetectMultiScaleWithParams(*small, faceScaleFactor, faceMinNeighbors, 0, image.Pt(minSize, minSize), image.Point{})
	}
	sb := image.Rect(0, 0, small.Cols(), small.Rows())
	for _, reg := range regions {
		r := image.Rect(int(float64(reg.Min.X)*scale), int(float64(reg.Min.Y)*scale),
			int(math.Ceil(float64(reg.Max.X)*scale)), int(math.Ceil(float64(reg.Max.Y)*scale))).Intersect(sb)
		if r.Dx() < minSize || r.Dy() < minSize {
			continue
		}
		roi := small.Region(r)
		for _, f := range cc.DetectMultiScaleWithParams(roi, faceScaleFactor, faceMinNeighbors, 0, image.Pt(minSize, minSize), image.Point{}) {
			rects = append(rects, f.Add(r.Min))
		}
		roi.Close()
	}
	bounds := image.Rect(0, 0, gray.Cols(), gray.Rows())
	out := make([]image.Rectangle, 0, len(rects))
	for _, r := range rects {
		if scale != 1 {
			r = image.Rect(int(float64(r.Min.X)/scale), int(float64(r.Min.Y)/scale),
				int(float64(r.Max.X)/scale), int(float64(r.Max.Y)/scale))
		}
		if r = r.Intersect(bounds); !r.Empty() {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return area(out[i]) > area(out[j]) })
	return out
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// faceDescriptor computes the LBPH descriptor of box in gray: crop, resize
// to lbpFaceSize², equalise, blur, LBP histograms.
func faceDescriptor(gray gocv.Mat, box image.Rectangle) ([]float32, error) {
	crop := gray.Region(box)
	defer crop.Close()
	norm := gocv.NewMat()
	defer norm.Close()
	gocv.Resize(crop, &norm, image.Pt(lbpFaceSize, lbpFaceSize), 0, 0, gocv.InterpolationArea)
	gocv.EqualizeHist(norm, &norm)
	// Blur before LBP: sign comparisons of neighbours are otherwise
	// dominated by JPEG and sensor noise.
	gocv.GaussianBlur(norm, &norm, image.Pt(3, 3), 0, 0, gocv.BorderDefault)
	px, err := norm.DataPtrUint8()
	if err != nil {
		return nil, err
	}
	return lbpDescriptor(px, norm.Cols(), norm.Rows(), norm.Step()), nil
}

// gallery is an immutable set of enrolled descriptors.
type gallery struct {
	names   []string // one per descriptor
	descs   [][]float32
	persons int
}

// nearest returns the gallery entry closest to d by chi-square distance.
func (g *gallery) nearest(d []float32) (name string, dist float64, ok bool) {
	if g == nil || len(g.descs) == 0 {
		return "", 0, false
	}
	best := -1
	for i, gd := range g.descs {
		if x := chiSquare(d, gd); best < 0 || x < dist {
			best, dist = i, x
		}
	}
	return g.names[best], dist, true
}

// recognise maps a face descriptor to a hit using the gallery and the
// similarity threshold.
func recognise(g *gallery, d []float32, threshold float64) (name string, sim float64, dist *float64) {
	n, dd, ok := g.nearest(d)
	if !ok {
		return "unknown", 0, nil
	}
	sim = similarity(dd)
	if sim < threshold {
		n = "unknown"
	}
	return n, sim, &dd
}

// galleryExts are the image files enrolled from a person's folder.
var galleryExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true}

// errNoFace is the reason a gallery image was skipped.
var errNoFace = errors.New("no face found")

// loadGallery enrols dir/<person>/*.jpg. Unreadable images and images
// without a face are skipped, counted in errors_total{source="gallery"}
// and logged; a missing or unreadable dir is an error.
func loadGallery(dir string, cc *gocv.CascadeClassifier, log *slog.Logger, m *metrics) (*gallery, error) {
	g := &gallery{}
	if dir == "" {
		return g, nil
	}
	start := time.Now()
	people, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("vision: gallery: %w", err)
	}
	skipped := 0
	for _, p := range people {
		if !p.IsDir() || strings.HasPrefix(p.Name(), ".") {
			continue
		}
		name := p.Name()
		if !utf8.ValidString(name) || utf8.RuneCountInString(name) > vocab.MaxPersonNameLen || name == "unknown" {
			log.Warn("gallery: person folder name not usable as person_name; skipped", "dir", filepath.Join(dir, name))
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil {
			m.errors.WithLabelValues("gallery", errGallery).Inc()
			log.Warn("gallery: cannot list person folder", "dir", filepath.Join(dir, name), "err", err)
			continue
		}
		enrolled := 0
		for _, f := range files {
			if f.IsDir() || !galleryExts[strings.ToLower(filepath.Ext(f.Name()))] {
				continue
			}
			path := filepath.Join(dir, name, f.Name())
			d, err := enrolImage(path, cc)
			if err != nil {
				skipped++
				m.errors.WithLabelValues("gallery", errGallery).Inc()
				log.Warn("gallery: image skipped", "path", path, "err", err)
				continue
			}
			g.names = append(g.names, name)
			g.descs = append(g.descs, d)
			enrolled++
		}
		if enrolled > 0 {
			g.persons++
		}
	}
	log.Info("gallery enrolled", "dir", dir, "persons", g.persons, "images", len(g.descs),
		"skipped", skipped, "duration", time.Since(start).Round(time.Millisecond))
	return g, nil
}

// enrolStore adds the store's gallery images to g. cache holds the
// descriptors of the previous enrolment by image id (an image never
// changes under its id), so a reload after one change decodes only the
// new image; the returned map is the cache for the next reload, holding
// the images enrolled now. Images that cannot be enrolled are skipped,
// counted and logged, as GalleryDir's are.
func enrolStore(g *gallery, imgs []GalleryImage, cache map[uint64][]float32, cc *gocv.CascadeClassifier, log *slog.Logger, m *metrics) map[uint64][]float32 {
	next := make(map[uint64][]float32, len(imgs))
	fresh, skipped := 0, 0
	for _, im := range imgs {
		if im.Person == "" || im.Person == "unknown" || !utf8.ValidString(im.Person) || utf8.RuneCountInString(im.Person) > vocab.MaxPersonNameLen {
			skipped++
			log.Warn("gallery: store image with an unusable person name; skipped", "face_id", im.ID)
			continue
		}
		d, ok := cache[im.ID]
		if !ok {
			var err error
			if d, err = enrolJPEG(im.JPEG, im.Crop, cc); err != nil {
				skipped++
				m.errors.WithLabelValues("gallery", errGallery).Inc()
				log.Warn("gallery: store image skipped", "face_id", im.ID, "err", err)
				continue
			}
			fresh++
		}
		next[im.ID] = d
		g.names = append(g.names, im.Person)
		g.descs = append(g.descs, d)
	}
	persons := map[string]bool{}
	for _, n := range g.names {
		persons[n] = true
	}
	g.persons = len(persons)
	if len(imgs) > 0 || len(cache) > 0 {
		log.Info("store gallery enrolled", "images", len(next), "new", fresh, "skipped", skipped,
			"persons", g.persons, "total_images", len(g.descs))
	}
	return next
}

// enrolJPEG returns the descriptor of a JPEG from the store: of the whole
// image when crop, else as enrolImage does.
func enrolJPEG(b []byte, crop bool, cc *gocv.CascadeClassifier) ([]float32, error) {
	img, err := gocv.IMDecode(b, gocv.IMReadGrayScale)
	if err != nil {
		return nil, fmt.Errorf("not an image OpenCV can decode: %w", err)
	}
	defer img.Close()
	if img.Empty() {
		return nil, errors.New("not an image OpenCV can decode")
	}
	if crop {
		return faceDescriptor(img, image.Rect(0, 0, img.Cols(), img.Rows()))
	}
	return enrolMat(img, cc)
}

// enrolImage returns the descriptor of the largest face in the image at
// path, or of the whole image when it is a small face crop.
func enrolImage(path string, cc *gocv.CascadeClassifier) ([]float32, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	img := gocv.IMRead(path, gocv.IMReadGrayScale)
	defer img.Close()
	if img.Empty() {
		return nil, errors.New("not an image OpenCV can decode")
	}
	return enrolMat(img, cc)
}

// enrolMat is enrolImage on a decoded grey image.
func enrolMat(img gocv.Mat, cc *gocv.CascadeClassifier) ([]float32, error) {
	faces := detectFaces(cc, img, faceMinSize)
	var box image.Rectangle
	switch {
	case len(faces) > 0:
		box = faces[0]
	case img.Cols() <= galleryCropMax && img.Rows() <= galleryCropMax:
		box = image.Rect(0, 0, img.Cols(), img.Rows())
	default:
		return nil, errNoFace
	}
	return faceDescriptor(img, box)
}
