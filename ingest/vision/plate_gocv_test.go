//go:build gocv

package vision

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gocv.io/x/gocv"
	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/securevision/events/internal/vocab"
)

const plateFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

// plateLetters leaves out I, O and Q, which many jurisdictions (most US
// states, the UK, Germany) do not issue because they read as 1 and 0.
const plateLetters = "ABCDEFGHJKLMNPRSTUVWXYZ"

// plateFormats: L letter, D digit (US-CA "7ABC123", NY "ABC1234", UK
// "AB12CDE", short vanity-like "AB1234").
var plateFormats = []string{"DLLLDDD", "LLLDDDD", "LLDDLLL", "LLDDDD", "LLLDDD"}

func randomPlate(r *rand.Rand) string {
	f := plateFormats[r.IntN(len(plateFormats))]
	b := make([]byte, len(f))
	for i, c := range f {
		if c == 'L' {
			b[i] = plateLetters[r.IntN(len(plateLetters))]
		} else {
			b[i] = byte('0' + r.IntN(10))
		}
	}
	return string(b)
}

// plateRenderer draws plates with a real TrueType font (Hershey fonts of
// PutText look nothing like plate lettering).
type plateRenderer struct {
	face font.Face
}

func newPlateRenderer(t testing.TB) *plateRenderer {
	t.Helper()
	b, err := os.ReadFile(plateFont)
	if err != nil {
		t.Skipf("font %s missing (apt-get install fonts-dejavu-core): %v", plateFont, err)
	}
	f, err := opentype.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 84, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatal(err)
	}
	return &plateRenderer{face: face}
}

// render returns a 520×120 plate: light background, dark border, text.
func (pr *plateRenderer) render(text string, bg, fg color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 520, 120))
	draw.Draw(img, img.Bounds(), &image.Uniform{fg}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(6, 6, 514, 114), &image.Uniform{bg}, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: &image.Uniform{fg}, Face: pr.face}
	w := d.MeasureString(text)
	d.Dot = fixed.Point26_6{X: (fixed.I(520) - w) / 2, Y: fixed.I(90)}
	d.DrawString(text)
	return img
}

// backgrounds are real photographs the plates are pasted into.
var backgrounds = []string{"building.jpg", "home.jpg", "fruits.jpg", "baboon.jpg", "stuff.jpg", "aero3.jpg", "left01.jpg"}

// plateScene renders text into a 800×600 scene: perspective-warped plate,
// Gaussian blur and Gaussian noise. It returns the BGR scene and the
// plate's bounding box.
func plateScene(t testing.TB, pr *plateRenderer, bgs []gocv.Mat, r *rand.Rand, text string) (gocv.Mat, image.Rectangle) {
	t.Helper()
	bg := color.RGBA{uint8(200 + r.IntN(56)), uint8(200 + r.IntN(56)), uint8(190 + r.IntN(66)), 255}
	fg := color.RGBA{uint8(r.IntN(50)), uint8(r.IntN(50)), uint8(r.IntN(70)), 255}
	plate, err := gocv.ImageToMatRGB(pr.render(text, bg, fg))
	if err != nil {
		t.Fatal(err)
	}
	defer plate.Close()

	const sw, sh = 800, 600
	scene := gocv.NewMat()
	gocv.Resize(bgs[r.IntN(len(bgs))], &scene, image.Pt(sw, sh), 0, 0, gocv.InterpolationLinear)

	// Destination quad: plate 170–320 px wide, corners jittered by up to
	// 6% of the width (a camera a little off-axis).
	w := 170 + r.Float64()*150
	h := w * 120 / 520
	x0 := 20 + r.Float64()*(sw-w-40)
	y0 := 20 + r.Float64()*(sh-h-40)
	j := func() float32 { return float32((r.Float64()*2 - 1) * 0.06 * w) }
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: 520, Y: 0}, {X: 520, Y: 120}, {X: 0, Y: 120}})
	defer src.Close()
	dstPts := []gocv.Point2f{
		{X: float32(x0) + j(), Y: float32(y0) + j()},
		{X: float32(x0+w) + j(), Y: float32(y0) + j()},
		{X: float32(x0+w) + j(), Y: float32(y0+h) + j()},
		{X: float32(x0) + j(), Y: float32(y0+h) + j()},
	}
	dst := gocv.NewPoint2fVectorFromPoints(dstPts)
	defer dst.Close()
	m := gocv.GetPerspectiveTransform2f(src, dst)
	defer m.Close()
	warped := gocv.NewMat()
	defer warped.Close()
	gocv.WarpPerspectiveWithParams(plate, &warped, m, image.Pt(sw, sh), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	ones := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 255, 255, 0), 120, 520, gocv.MatTypeCV8UC1)
	defer ones.Close()
	mask := gocv.NewMat()
	defer mask.Close()
	gocv.WarpPerspectiveWithParams(ones, &mask, m, image.Pt(sw, sh), gocv.InterpolationNearestNeighbor, gocv.BorderConstant, color.RGBA{})
	warped.CopyToWithMask(&scene, mask)

	k := []int{3, 5}[r.IntN(2)]
	gocv.GaussianBlur(scene, &scene, image.Pt(k, k), 0.6+r.Float64(), 0, gocv.BorderDefault)
	f := gocv.NewMat()
	defer f.Close()
	scene.ConvertTo(&f, gocv.MatTypeCV32FC3)
	// Noise from r, not gocv.RandN: OpenCV's generator is per thread, so
	// the set would depend on which thread rendered which plate.
	sigma := 3 + r.Float64()*7
	nb := make([]byte, sw*sh*3*4)
	for i := 0; i < len(nb); i += 4 {
		binary.LittleEndian.PutUint32(nb[i:], math.Float32bits(float32(r.NormFloat64()*sigma)))
	}
	noise, err := gocv.NewMatFromBytes(sh, sw, gocv.MatTypeCV32FC3, nb)
	if err != nil {
		t.Fatal(err)
	}
	defer noise.Close()
	gocv.Add(f, noise, &f)
	f.ConvertTo(&scene, gocv.MatTypeCV8UC3)

	var box image.Rectangle
	for i, p := range dstPts {
		pt := image.Pt(int(p.X), int(p.Y))
		if i == 0 {
			box = image.Rectangle{Min: pt, Max: pt}
		}
		box = box.Union(image.Rectangle{Min: pt, Max: pt.Add(image.Pt(1, 1))})
	}
	return scene, box
}

func loadBackgrounds(t testing.TB) []gocv.Mat {
	var bgs []gocv.Mat
	for _, n := range backgrounds {
		p := filepath.Join(sampleDir, n)
		m := gocv.IMRead(p, gocv.IMReadColor)
		if m.Empty() {
			m.Close()
			continue
		}
		bgs = append(bgs, m)
	}
	if len(bgs) == 0 {
		t.Skip("no background images in " + sampleDir)
	}
	t.Cleanup(func() {
		for _, m := range bgs {
			m.Close()
		}
	})
	return bgs
}

// TestPlateReading renders 200 random plates into photographs and reads
// them back through the real detector and Tesseract.
func TestPlateReading(t *testing.T) {
	const n = 200
	pr := newPlateRenderer(t)
	bgs := loadBackgrounds(t)
	p, a0 := newTestPipeline(t, Options{}, nil)
	a1, err := p.newAnalyser(Source{ID: "test_cam2", URL: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	defer a1.close()

	type result struct {
		truth, got string
		conf       float64
		located    bool
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	var mu sync.Mutex                       // the font face is not safe for concurrent use
	save := os.Getenv("VISION_SAVE_PLATES") // a directory to dump misses into
	for w, a := range []*analyser{a0, a1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gray := gocv.NewMat()
			defer gray.Close()
			for i := w; i < n; i += 2 {
				// One seeded source per plate: the set does not depend
				// on how the two workers interleave.
				r := rand.New(rand.NewPCG(1, uint64(i)))
				text := randomPlate(r)
				mu.Lock()
				scene, box := plateScene(t, pr, bgs, r, text)
				mu.Unlock()
				gocv.CvtColor(scene, &gray, gocv.ColorBGRToGray)
				hits := a.plates(gray)
				res := result{truth: text}
				for _, h := range hits {
					if h.conf > res.conf {
						res.got, res.conf = h.text, h.conf
						res.located = iou(h.box, box) > 0.2
					}
				}
				results[i] = res
				if save != "" && res.got != text {
					gocv.IMWrite(filepath.Join(save, fmt.Sprintf("%03d_%s_%s.png", i, text, res.got)), scene)
				}
				scene.Close()
			}
		}()
	}
	wg.Wait()
	exact, located := 0, 0
	for i, res := range results {
		if res.got == res.truth {
			exact++
		} else {
			t.Logf("plate %d: want %s, read %q (confidence %.2f)", i, res.truth, res.got, res.conf)
		}
		if res.located {
			located++
		}
	}
	acc := float64(exact) / n
	t.Logf("plate reading: %d/%d exact (%.1f%%), best hit on the plate in %d/%d", exact, n, 100*acc, located, n)
	// The set is deterministic (per-plate seeds, noise from r) and reads
	// 181/200 (90.5 %, see the package doc); the floor is the ≥ 90 %
	// goal, so losing more than one plate fails.
	const floor = 0.90
	if acc < floor {
		t.Fatalf("exact-match accuracy %.1f%%, below the measured floor %.0f%%", 100*acc, 100*floor)
	}
}

func TestPlateEventListMatch(t *testing.T) {
	pr := newPlateRenderer(t)
	bgs := loadBackgrounds(t)
	// The list answers for whatever was read: this test is about the
	// event's fields, TestPlateReading about OCR accuracy.
	var looked []string
	lists := listFunc(func(p string) string {
		looked = append(looked, p)
		return vocab.Blacklist
	})
	_, a := newTestPipeline(t, Options{Lists: lists, Regions: map[string]string{"*": "UK"}}, nil)
	r := rand.New(rand.NewPCG(3, 4))
	scene, _ := plateScene(t, pr, bgs, r, "AB12CDE")
	defer scene.Close()
	a.analyse(scene, 1000)
	evs := a.dd.flush()
	if len(evs) != 1 || evs[0].Plate == nil {
		t.Fatalf("events %+v", evs)
	}
	pl := evs[0].Plate
	t.Logf("read %q (rendered AB12CDE), looked up %q", pl.PlateText, looked)
	if len(pl.PlateText) < minPlateChars || len(looked) != 1 || looked[0] != pl.PlateText || pl.ListMatch != vocab.Blacklist || !pl.ListMatchSet || pl.Region != "UK" || pl.BBox == nil {
		t.Fatalf("plate %+v", pl)
	}
	if len(evs[0].Snapshot) == 0 {
		t.Fatal("no snapshot")
	}
}

type listFunc func(string) string

func (f listFunc) Match(p string) string { return f(p) }
