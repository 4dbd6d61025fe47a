//go:build gocv

package vision

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
	"strings"

	"github.com/otiai10/gosseract/v2"
	"gocv.io/x/gocv"

	"github.com/securevision/events/ingest/watchlist"
)

const (
	// plateDetectWidth: frames are scaled to at most this width for the
	// morphological plate search (kernel sizes below are in these pixels).
	plateDetectWidth = 960
	// maxPlateCandidates bounds OCR work per frame: each candidate that
	// passes the character check costs one Tesseract call (~10–40 ms).
	maxPlateCandidates = 6
	// ocrHeight is the height candidates are scaled to before OCR.
	// Measured on the synthetic plate set: 48 px 61.5 %, 64 px 63 %,
	// 96 px 66 %, 128 px 66.5 % exact reads; 96 is the knee.
	ocrHeight = 96
	// minPlateChars / maxPlateChars bound a plausible plate reading.
	minPlateChars = 4
	maxPlateChars = 10
	// minPlateConfidence: readings Tesseract is less sure of are noise
	// (signs, textures), not plates.
	minPlateConfidence = 0.5
	// ocrWhitelist: plates are upper-case Latin letters and digits.
	ocrWhitelist = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

type plateHit struct {
	box  image.Rectangle
	text string
	conf float64
}

// newOCR returns a Tesseract client set up for one line of plate
// characters. It fails when the eng traineddata is missing.
func newOCR() (*gosseract.Client, error) {
	c := gosseract.NewClient()
	err := c.SetLanguage("eng")
	if err == nil {
		err = c.SetPageSegMode(gosseract.PSM_SINGLE_LINE)
	}
	if err == nil {
		err = c.SetWhitelist(ocrWhitelist)
	}
	if err == nil {
		// Our crops carry no DPI; without this Tesseract guesses and
		// prints "Estimating resolution" for every call.
		err = c.SetVariable("user_defined_dpi", "300")
	}
	if err == nil {
		err = c.DisableOutput()
	}
	if err == nil {
		// Initialise now (Tesseract initialises lazily on the first
		// image) so a missing language pack fails at start, not at the
		// first plate.
		blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), 16, 16, gocv.MatTypeCV8UC1)
		defer blank.Close()
		var buf *gocv.NativeByteBuffer
		if buf, err = gocv.IMEncode(gocv.PNGFileExt, blank); err == nil {
			err = c.SetImageFromBytes(buf.GetBytes())
			buf.Close()
			if err == nil {
				_, err = c.Text()
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("vision: tesseract: %w (is tesseract-ocr-eng installed?)", err)
	}
	return c, nil
}

// plateCand is a candidate plate text line in frame pixels, with the slope
// of its character centres (for deskewing).
type plateCand struct {
	box   image.Rectangle
	angle float64 // degrees, positive = text rises to the right in image coordinates
	chars int
}

// plateCandidates returns likely plate text lines in gray's pixels, most
// characters first. Plate characters are dark, similar-height blobs in a
// horizontal row: an adaptive threshold isolates dark strokes, connected
// components of character shape are kept, and chains of ≥ minPlateChars
// neighbours of similar height on one line become candidates. This works
// on textured scenes where edge-density morphology merges the plate with
// its surroundings. The optional Haar cascade adds its boxes.
func plateCandidates(gray gocv.Mat, cc *gocv.CascadeClassifier) []plateCand {
	scale := 1.0
	small := gocv.NewMat()
	defer small.Close()
	if gray.Cols() > plateDetectWidth {
		scale = float64(plateDetectWidth) / float64(gray.Cols())
		gocv.Resize(gray, &small, image.Point{}, scale, scale, gocv.InterpolationArea)
	} else {
		gray.CopyTo(&small)
	}

	cands := textLines(small)
	if cc != nil {
		for _, r := range cc.DetectMultiScaleWithParams(small, 1.1, 4, 0, image.Pt(40, 12), image.Point{}) {
			cands = append(cands, plateCand{box: r})
		}
	}

	bounds := image.Rect(0, 0, gray.Cols(), gray.Rows())
	out := make([]plateCand, 0, len(cands))
	for _, c := range cands {
		r := c.box
		// Pad: OCR wants a margin around the characters.
		// A character height sideways: the chain may have missed an
		// end character; ocrPrep finds it again inside the crop.
		px, py := r.Dy()/3+2, r.Dy()/3+2
		r = image.Rect(r.Min.X-px, r.Min.Y-py, r.Max.X+px, r.Max.Y+py)
		if scale != 1 {
			r = image.Rect(int(float64(r.Min.X)/scale), int(float64(r.Min.Y)/scale),
				int(math.Ceil(float64(r.Max.X)/scale)), int(math.Ceil(float64(r.Max.Y)/scale)))
		}
		if r = r.Intersect(bounds); !r.Empty() {
			c.box = r
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].chars > out[j].chars })
	var keep []plateCand
	for _, c := range out {
		dup := false
		for _, k := range keep {
			if iou(c.box, k.box) > 0.5 {
				dup = true
				break
			}
		}
		if !dup {
			keep = append(keep, c)
		}
		if len(keep) == maxPlateCandidates {
			break
		}
	}
	return keep
}

func iou(a, b image.Rectangle) float64 {
	in := area(a.Intersect(b))
	if in == 0 {
		return 0
	}
	return float64(in) / float64(area(a)+area(b)-in)
}

// textLines finds rows of character-shaped dark blobs.
func textLines(small gocv.Mat) []plateCand {
	bin := gocv.NewMat()
	defer bin.Close()
	// Block 31 px: larger than a stroke of a 15–80 px character, small
	// enough to follow lighting across a frame.
	gocv.AdaptiveThreshold(small, &bin, 255, gocv.AdaptiveThresholdGaussian, gocv.ThresholdBinaryInv, 31, 12)
	// RetrievalList, not External: a plate's border is a closed dark
	// contour that would swallow its characters.
	contours := gocv.FindContours(bin, gocv.RetrievalList, gocv.ChainApproxSimple)
	defer contours.Close()
	maxH := small.Rows() / 4
	var boxes []image.Rectangle
	for i := 0; i < contours.Size(); i++ {
		r := gocv.BoundingRect(contours.At(i))
		if r.Dy() < 12 || r.Dy() > maxH || r.Dx() < 2 || r.Dx()*5 > r.Dy()*8 || r.Dy() > 8*r.Dx() {
			continue
		}
		boxes = append(boxes, r)
	}
	sort.Slice(boxes, func(i, j int) bool { return boxes[i].Min.X < boxes[j].Min.X })
	// Drop boxes inside another box (the holes of A, B, 0, … and their
	// inner outlines).
	kept := boxes[:0]
	for i, b := range boxes {
		inside := false
		for j := i - 1; j >= 0 && !inside; j-- {
			inside = j != i && b.In(boxes[j]) && boxes[j] != b
		}
		for j := i + 1; j < len(boxes) && boxes[j].Min.X <= b.Min.X && !inside; j++ {
			inside = b.In(boxes[j]) && boxes[j] != b
		}
		if !inside {
			kept = append(kept, b)
		}
	}
	boxes = kept

	// Chain each box to its nearest right neighbour of similar height on
	// the same line; follow chains from their heads.
	next := make([]int, len(boxes))
	hasPrev := make([]bool, len(boxes))
	for i, a := range boxes {
		next[i] = -1
		h := a.Dy()
		best, bestGap := -1, 0
		for j := i + 1; j < len(boxes) && boxes[j].Min.X < a.Max.X+h; j++ {
			b := boxes[j]
			gap := b.Min.X - a.Max.X
			if gap < -h/3 || b.Dy()*10 < h*7 || b.Dy()*7 > h*10 {
				continue
			}
			cyA, cyB := (a.Min.Y+a.Max.Y)/2, (b.Min.Y+b.Max.Y)/2
			if abs(cyA-cyB)*10 > h*3 {
				continue
			}
			if best < 0 || gap < bestGap {
				best, bestGap = j, gap
			}
		}
		if best >= 0 && !hasPrev[best] {
			next[i] = best
			hasPrev[best] = true
		}
	}
	var out []plateCand
	for i := range boxes {
		if hasPrev[i] {
			continue
		}
		var members []image.Rectangle
		for j := i; j >= 0; j = next[j] {
			members = append(members, boxes[j])
		}
		if len(members) < minPlateChars || len(members) > maxPlateChars+2 {
			continue
		}
		u := members[0]
		for _, m := range members[1:] {
			u = u.Union(m)
		}
		f, l := members[0], members[len(members)-1]
		dx := float64((l.Min.X+l.Max.X)-(f.Min.X+f.Max.X)) / 2
		dy := float64((l.Min.Y+l.Max.Y)-(f.Min.Y+f.Max.Y)) / 2
		out = append(out, plateCand{box: u, angle: math.Atan2(dy, dx) * 180 / math.Pi, chars: len(members)})
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// ocrPrep turns a candidate crop into a grey line image for Tesseract:
// scale to ocrHeight, deskew, dark text on light, cropped to the extent of
// the character-shaped blobs of an Otsu binarisation (which drops the plate
// border, screws and dirt). It reports false when too few character-like
// blobs are found, which spares Tesseract most non-plates.
func ocrPrep(gray gocv.Mat, c plateCand) (gocv.Mat, bool) {
	box := c.box
	crop := gray.Region(box)
	defer crop.Close()
	scaled := gocv.NewMat()
	defer scaled.Close()
	s := float64(ocrHeight) / float64(box.Dy())
	gocv.Resize(crop, &scaled, image.Point{}, s, s, gocv.InterpolationCubic)
	if math.Abs(c.angle) > 1.5 && math.Abs(c.angle) < 30 {
		// Deskew around the centre; the padding keeps the corners of
		// the characters inside the crop.
		rot := gocv.GetRotationMatrix2D(image.Pt(scaled.Cols()/2, scaled.Rows()/2), c.angle, 1)
		gocv.WarpAffineWithParams(scaled, &scaled, rot, image.Pt(scaled.Cols(), scaled.Rows()),
			gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
		rot.Close()
	}
	bin := gocv.NewMat()
	gocv.Threshold(scaled, &bin, 0, 255, gocv.ThresholdBinary|gocv.ThresholdOtsu)
	// Text must be dark on light: a plate's background is the majority.
	if bin.Mean().Val1 < 128 {
		gocv.BitwiseNot(bin, &bin)
		gocv.BitwiseNot(scaled, &scaled)
	}
	inv := gocv.NewMat()
	defer inv.Close()
	gocv.BitwiseNot(bin, &inv)
	contours := gocv.FindContours(inv, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	h := bin.Rows()
	var blobs, chars []image.Rectangle
	for i := 0; i < contours.Size(); i++ {
		r := gocv.BoundingRect(contours.At(i))
		blobs = append(blobs, r)
		if r.Dy() < h*3/10 || r.Dy() > h*95/100 || r.Dx()*5 > r.Dy()*8 || r.Dx() < 2 {
			continue
		}
		chars = append(chars, r)
	}
	if len(chars) < minPlateChars-1 {
		bin.Close()
		return gocv.Mat{}, false
	}
	// The characters of one plate share height and vertical centre; the
	// plate border, screws and dirt do not. Blobs of character height are
	// kept whatever their width (kerned pairs such as "TV" merge into
	// one blob) and give the horizontal extent of the text.
	hs := make([]int, len(chars))
	cys := make([]int, len(chars))
	for i, r := range chars {
		hs[i], cys[i] = r.Dy(), (r.Min.Y+r.Max.Y)/2
	}
	sort.Ints(hs)
	sort.Ints(cys)
	med, medY := hs[len(hs)/2], cys[len(cys)/2]
	var u image.Rectangle
	n := 0
	for _, r := range blobs {
		if r.Dy()*100 < med*75 || r.Dy()*100 > med*130 || abs((r.Min.Y+r.Max.Y)/2-medY)*4 > med {
			continue
		}
		u = u.Union(r)
		n++
	}
	if n < 2 || u.Dx() < 2*med {
		bin.Close()
		return gocv.Mat{}, false
	}
	u = image.Rect(u.Min.X-med/5, u.Min.Y-med/8, u.Max.X+med/5, u.Max.Y+med/8).Intersect(image.Rect(0, 0, bin.Cols(), bin.Rows()))
	// Tesseract's LSTM reads the anti-aliased grey line better than our
	// binarisation (measured on the synthetic plate set); the binary
	// image only located the characters.
	tight := scaled.Region(u)
	out := gocv.NewMat()
	gocv.CopyMakeBorder(tight, &out, 12, 12, 12, 12, gocv.BorderConstant, colorWhite)
	tight.Close()
	bin.Close()
	return out, true
}

// readPlate runs Tesseract on a prepared line image and returns the
// normalised text and the mean character confidence in [0,1].
func readPlate(c *gosseract.Client, line gocv.Mat) (string, float64, error) {
	buf, err := gocv.IMEncode(gocv.PNGFileExt, line)
	if err != nil {
		return "", 0, err
	}
	defer buf.Close()
	if err := c.SetImageFromBytes(buf.GetBytes()); err != nil {
		return "", 0, err
	}
	words, err := c.GetBoundingBoxes(gosseract.RIL_SYMBOL)
	if err != nil {
		return "", 0, err
	}
	var b strings.Builder
	var confSum float64
	n := 0
	for _, w := range words {
		t := watchlist.Normalize(w.Word)
		b.WriteString(t)
		confSum += w.Confidence * float64(len(t))
		n += len(t)
	}
	if n == 0 {
		return "", 0, nil
	}
	return fixDigitConfusions(b.String()), math.Max(0, math.Min(1, confSum/float64(n)/100)), nil
}

// fixDigitConfusions reads an O or I that touches a digit (directly or
// through a run of O/I) as 0 or 1. Tesseract's English model prefers the
// letters, while plates mostly put these shapes among digits and many
// jurisdictions (most US states, the UK's random part) do not issue I, O
// or Q at all. B/8 and S/5 are left alone: both are common plate letters.
// Watchlist matching treats all four pairs as equal anyway.
func fixDigitConfusions(s string) string {
	b := []byte(s)
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(b); {
		if b[i] != 'O' && b[i] != 'I' {
			i++
			continue
		}
		j := i
		for j < len(b) && (b[j] == 'O' || b[j] == 'I') {
			j++
		}
		if (i > 0 && isDigit(b[i-1])) || (j < len(b) && isDigit(b[j])) {
			for k := i; k < j; k++ {
				if b[k] == 'O' {
					b[k] = '0'
				} else {
					b[k] = '1'
				}
			}
		}
		i = j
	}
	return string(b)
}
