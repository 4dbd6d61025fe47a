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
	// passes the character check costs one to len(ocrPasses) Tesseract
	// calls, each far costlier than the candidate search.
	maxPlateCandidates = 6
	// ocrHeight is the height a candidate without a plate outline is
	// scaled to before its characters are cut out (see ocrPrep).
	ocrHeight = 96
	// minPlateChars / maxPlateChars bound a plausible plate reading.
	minPlateChars = 4
	maxPlateChars = 10
	// minPlateConfidence: readings Tesseract is less sure of are noise
	// (signs, textures), not plates.
	minPlateConfidence = 0.5
	// ocrWhitelist: plates are upper-case Latin letters and digits, less
	// I and O, so Tesseract reads those shapes as 1 and 0. Many
	// jurisdictions (most US states, for one) do not issue I or O because
	// they are indistinguishable from 1 and 0 on a plate, and
	// watchlist.Key folds O/0 and I/1 anyway, so no list match is lost
	// where they are issued. B/8, S/5, G/6 and Z/2 stay: all are common.
	ocrWhitelist = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
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
	box   image.Rectangle // padded crop in frame pixels
	text  image.Rectangle // the character chain in frame pixels (empty for cascade boxes)
	angle float64         // degrees, positive = text rises to the right in image coordinates
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
	small := gray // no copy: the search only reads it
	if gray.Cols() > plateDetectWidth {
		scale = float64(plateDetectWidth) / float64(gray.Cols())
		small = gocv.NewMat()
		defer small.Close()
		gocv.Resize(gray, &small, image.Point{}, scale, scale, gocv.InterpolationArea)
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
		if c.chars > 0 {
			c.text = unscale(r, scale).Intersect(bounds)
		}
		// Pad a third of a character height: the crop is the fallback
		// when no plate outline is found (ocrPrep), and the characters
		// are cut out of it again there.
		px, py := r.Dy()/3+2, r.Dy()/3+2
		r = unscale(image.Rect(r.Min.X-px, r.Min.Y-py, r.Max.X+px, r.Max.Y+py), scale)
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

// unscale maps r from a frame scaled by scale back to frame pixels.
func unscale(r image.Rectangle, scale float64) image.Rectangle {
	if scale == 1 {
		return r
	}
	return image.Rect(int(float64(r.Min.X)/scale), int(float64(r.Min.Y)/scale),
		int(math.Ceil(float64(r.Max.X)/scale)), int(math.Ceil(float64(r.Max.Y)/scale)))
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

// maxQuadTries bounds the plate outlines tried per candidate.
const maxQuadTries = 3

// rectifiedHeight is the height, in pixels, of a plate warped to the
// canonical view by rectifyPlate.
const rectifiedHeight = 96

// plateQuads looks for the outline of the plate around a character chain
// text (frame pixels): the light plate face inside its dark border (or the
// plate against a darker car body). Both polarities of an Otsu
// binarisation of the neighbourhood are searched for convex
// quadrilaterals that enclose the chain and do not touch the edge of the
// searched neighbourhood (a shape cut off there is not the plate). They
// are returned smallest first — the inner edge of the border before its
// outer edge or a window the plate hangs in — with corners clockwise from
// top left, in frame pixels.
func plateQuads(gray gocv.Mat, text image.Rectangle) [][4]gocv.Point2f {
	th, tw := text.Dy(), text.Dx()
	if th < 4 || tw < 2*th {
		return nil
	}
	// A plate extends about one character height above and below its
	// text and up to two sideways (more under perspective); the chain
	// may have missed characters at either end.
	mx, my := 2*th+tw/2, th+th/2
	reg := image.Rect(text.Min.X-mx, text.Min.Y-my, text.Max.X+mx, text.Max.Y+my).
		Intersect(image.Rect(0, 0, gray.Cols(), gray.Rows()))
	crop := gray.Region(reg)
	defer crop.Close()
	bin := gocv.NewMat()
	defer bin.Close()
	t := text.Sub(reg.Min)
	// Points that must lie inside the plate: the ends and the middle of
	// the chain's centre line.
	cy := (t.Min.Y + t.Max.Y) / 2
	inner := []image.Point{{t.Min.X + th/4, cy}, {(t.Min.X + t.Max.X) / 2, cy}, {t.Max.X - th/4, cy}}
	inside := image.Rect(2, 2, reg.Dx()-2, reg.Dy()-2)
	minA, maxA := 1.3*float64(tw*th), 12*float64(tw*th)
	type quad struct {
		area float64
		q    [4]gocv.Point2f
	}
	var quads []quad
	for _, typ := range []gocv.ThresholdType{gocv.ThresholdBinary, gocv.ThresholdBinaryInv} {
		gocv.Threshold(crop, &bin, 0, 255, typ|gocv.ThresholdOtsu)
		contours := gocv.FindContours(bin, gocv.RetrievalList, gocv.ChainApproxSimple)
		for i := 0; i < contours.Size(); i++ {
			c := contours.At(i)
			a := gocv.ContourArea(c)
			if a < minA || a > maxA {
				continue
			}
			approx := gocv.ApproxPolyDP(c, 0.04*gocv.ArcLength(c, true), true)
			pts := approx.ToPoints()
			ok := len(pts) == 4 && convex(pts)
			for _, p := range pts {
				ok = ok && p.In(inside)
			}
			for _, p := range inner {
				ok = ok && gocv.PointPolygonTest(approx, p, false) > 0
			}
			if ok {
				quads = append(quads, quad{a, orderCorners(pts, reg.Min)})
			}
			approx.Close()
		}
		contours.Close()
	}
	sort.Slice(quads, func(i, j int) bool { return quads[i].area < quads[j].area })
	out := make([][4]gocv.Point2f, len(quads))
	for i, q := range quads {
		out[i] = q.q
	}
	return out
}

// convex reports whether the polygon pts turns the same way at every
// vertex.
func convex(pts []image.Point) bool {
	sign := 0
	for i := range pts {
		a, b, c := pts[i], pts[(i+1)%len(pts)], pts[(i+2)%len(pts)]
		cross := (b.X-a.X)*(c.Y-b.Y) - (b.Y-a.Y)*(c.X-b.X)
		s := 1
		if cross < 0 {
			s = -1
		} else if cross == 0 {
			return false
		}
		if sign != 0 && s != sign {
			return false
		}
		sign = s
	}
	return true
}

// orderCorners returns the four corners of a quadrilateral as top left,
// top right, bottom right, bottom left, offset by off. A plate is wider
// than high and never upside down, so the two highest corners are the top
// ones.
func orderCorners(pts []image.Point, off image.Point) [4]gocv.Point2f {
	p := append([]image.Point(nil), pts...)
	sort.Slice(p, func(i, j int) bool { return p[i].Y < p[j].Y })
	if p[0].X > p[1].X {
		p[0], p[1] = p[1], p[0]
	}
	if p[2].X < p[3].X {
		p[2], p[3] = p[3], p[2]
	}
	var q [4]gocv.Point2f
	for i, c := range p {
		c = c.Add(off)
		q[i] = gocv.Point2f{X: float32(c.X), Y: float32(c.Y)}
	}
	return q
}

func dist(a, b gocv.Point2f) float64 {
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}

// rectifyPlate warps the plate quadrilateral q to a fronto-parallel view
// rectifiedHeight pixels high, keeping the plate's aspect ratio.
func rectifyPlate(gray gocv.Mat, q [4]gocv.Point2f) gocv.Mat {
	w := (dist(q[0], q[1]) + dist(q[3], q[2])) / 2
	h := (dist(q[0], q[3]) + dist(q[1], q[2])) / 2
	W := int(math.Round(w * rectifiedHeight / h))
	src := gocv.NewPoint2fVectorFromPoints(q[:])
	defer src.Close()
	dst := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: float32(W), Y: 0},
		{X: float32(W), Y: rectifiedHeight}, {X: 0, Y: rectifiedHeight}})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform2f(src, dst)
	defer m.Close()
	out := gocv.NewMat()
	gocv.WarpPerspectiveWithParams(gray, &out, m, image.Pt(W, rectifiedHeight), gocv.InterpolationCubic, gocv.BorderReplicate, color.RGBA{})
	return out
}

// ocrPrep turns a candidate into a grey line image for Tesseract. The
// plate is rectified by its quadrilateral outline when one is found
// (undoing rotation, shear and keystone of an off-axis camera); otherwise
// the padded crop is scaled to ocrHeight and deskewed by the slope of the
// character chain. The result is made dark-on-light and cropped to the
// extent of the character-shaped blobs of an Otsu binarisation (which
// drops the plate border, screws and dirt). It reports false when too few
// character-like blobs are found, which spares Tesseract most non-plates.
func ocrPrep(gray gocv.Mat, c plateCand) (ocrLine, bool) {
	if !c.text.Empty() {
		for i, q := range plateQuads(gray, c.text) {
			if i == maxQuadTries {
				break
			}
			plate := rectifyPlate(gray, q)
			line, ok := textLine(plate)
			plate.Close()
			if ok && !line.clipped {
				return line, true
			}
			line.img.Close()
		}
	}
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
	return textLine(scaled)
}

// textLine cuts the line of characters out of a grey plate image: the
// character-shaped blobs of an Otsu binarisation that share the median
// character height and band are pasted, with their anti-aliased grey
// levels stretched so ink is black and plate white, onto a white canvas
// with a margin of half a character height (so Tesseract sees the first
// and last character clear of any edge); everything else — the plate
// border, screws, dirt, a frame — is left white. It returns the canvas,
// the median character height in it and the number of character blobs
// (a kerned pair that touches counts once).
func textLine(scaled gocv.Mat) (ocrLine, bool) {
	bin := gocv.NewMat()
	defer bin.Close()
	gocv.Threshold(scaled, &bin, 0, 255, gocv.ThresholdBinary|gocv.ThresholdOtsu)
	grey := scaled
	// Text must be dark on light: a plate's background is the majority.
	if bin.Mean().Val1 < 128 {
		gocv.BitwiseNot(bin, &bin)
		grey = gocv.NewMat()
		defer grey.Close()
		gocv.BitwiseNot(scaled, &grey)
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
		return ocrLine{}, false
	}
	// The characters of one plate share height and vertical band; the
	// plate border, screws and dirt do not. Blobs that cover most of the
	// median band are kept whatever their width (kerned pairs such as
	// "TV" merge into one blob) and however far they reach below it (a J
	// or Q with a descender).
	tops := make([]int, len(chars))
	bots := make([]int, len(chars))
	for i, r := range chars {
		tops[i], bots[i] = r.Min.Y, r.Max.Y
	}
	sort.Ints(tops)
	sort.Ints(bots)
	top, bot := tops[len(tops)/2], bots[len(bots)/2]
	med := bot - top
	if med < 4 {
		return ocrLine{}, false
	}
	var keep []image.Rectangle
	var u image.Rectangle
	for _, r := range blobs {
		overlap := min(r.Max.Y, bot) - max(r.Min.Y, top)
		if overlap*10 < med*7 || r.Dy()*10 > med*15 || r.Dx() < 2 {
			continue
		}
		keep = append(keep, r)
		u = u.Union(r)
	}
	if len(keep) < 2 || u.Dx() < 2*med {
		return ocrLine{}, false
	}
	// Stretch grey levels: mean ink → 0, mean plate → 255.
	ink, bg := grey.MeanWithMask(inv).Val1, grey.MeanWithMask(bin).Val1
	if bg-ink < 20 {
		return ocrLine{}, false
	}
	alpha := 255 / (bg - ink)
	m := med / 2
	canvas := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), u.Dy()+2*m, u.Dx()+2*m, gocv.MatTypeCV8UC1)
	bounds := image.Rect(0, 0, grey.Cols(), grey.Rows())
	for _, r := range keep {
		r = r.Inset(-2).Intersect(bounds)
		src := grey.Region(r)
		dst := canvas.Region(r.Sub(u.Min).Add(image.Pt(m, m)))
		src.ConvertToWithParams(&dst, gocv.MatTypeCV8U, float32(alpha), float32(-ink*alpha))
		src.Close()
		dst.Close()
	}
	clipped := u.Min.X <= 1 || u.Max.X >= grey.Cols()-1
	return ocrLine{img: canvas, charHeight: med, blobs: len(keep), clipped: clipped}, true
}

// ocrLine is a line image prepared for Tesseract.
type ocrLine struct {
	img        gocv.Mat // dark characters on white
	charHeight int      // median character height in img
	blobs      int      // character blobs found; a hint to the character count
	clipped    bool     // a character touches the left or right edge of the source image
}

// reading is one Tesseract reading of a line: the normalised text and the
// confidence (0–1) of each of its characters.
type reading struct {
	text  string
	confs []float64
}

func (r reading) mean() float64 {
	if len(r.confs) == 0 {
		return 0
	}
	s := 0.0
	for _, c := range r.confs {
		s += c
	}
	return s / float64(len(r.confs))
}

func (r reading) min() float64 {
	m := 1.0
	for _, c := range r.confs {
		m = math.Min(m, c)
	}
	return m
}

// ocrPass is one way of presenting a line to Tesseract.
type ocrPass struct {
	charHeight int                   // characters scaled to this height
	psm        gosseract.PageSegMode // page segmentation mode
}

// ocrPasses are the presentations of a line to Tesseract, tried in order
// until the first is sure enough (see readLine). On the synthetic plate
// set no single pass is best on every plate — scale changes which
// character Tesseract doubles or drops — and the passes often fail on
// different plates, so their vote reads more plates than any one of them.
var ocrPasses = []ocrPass{
	{32, gosseract.PSM_SINGLE_LINE},
	{32, gosseract.PSM_RAW_LINE},
	{44, gosseract.PSM_SINGLE_LINE},
	{24, gosseract.PSM_SINGLE_LINE},
}

// sureConfidence: a first reading whose every character is at least this
// sure, and whose length matches the blob count, is taken without further
// passes.
const sureConfidence = 0.9

// readLine reads a prepared line with the passes of ocrPasses and votes.
// It returns the normalised text and its mean character confidence.
func readLine(c *gosseract.Client, l ocrLine) (string, float64, error) {
	var rs []reading
	defer c.SetPageSegMode(gosseract.PSM_SINGLE_LINE)
	for i, p := range ocrPasses {
		img := gocv.NewMat()
		s := float64(p.charHeight) / float64(l.charHeight)
		gocv.Resize(l.img, &img, image.Point{}, s, s, gocv.InterpolationArea)
		c.SetPageSegMode(p.psm)
		r, err := readPlate(c, img)
		img.Close()
		if err != nil {
			return "", 0, err
		}
		rs = append(rs, r)
		if i == 0 && len(r.text) == l.blobs && r.min() >= sureConfidence {
			break
		}
	}
	r := vote(rs, l.blobs)
	return r.text, r.mean(), nil
}

// vote combines readings of one line. Readings as long as the number of
// character blobs are preferred (Tesseract's usual errors are a doubled
// or dropped character, which changes the length); among the readings of
// the winning length, each position takes the character with the highest
// summed confidence, so two passes that read B agree against one that read
// 8 — unless that one was much surer.
func vote(rs []reading, blobs int) reading {
	byLen := map[int][]reading{}
	for _, r := range rs {
		if r.text != "" {
			byLen[len(r.text)] = append(byLen[len(r.text)], r)
		}
	}
	if len(byLen) == 0 {
		return reading{}
	}
	best := -1
	score := func(n int) float64 {
		s := 0.0
		for _, r := range byLen[n] {
			s += r.mean()
		}
		if n == blobs {
			s += 10
		}
		return s
	}
	for n := range byLen {
		if best < 0 || score(n) > score(best) || score(n) == score(best) && n > best {
			best = n
		}
	}
	group := byLen[best]
	out := reading{confs: make([]float64, best)}
	text := make([]byte, best)
	for i := 0; i < best; i++ {
		sum := map[byte]float64{}
		for _, r := range group {
			sum[r.text[i]] += r.confs[i]
		}
		var ch byte
		for k, v := range sum {
			if ch == 0 || v > sum[ch] || v == sum[ch] && k < ch {
				ch = k
			}
		}
		text[i] = ch
		out.confs[i] = sum[ch] / float64(len(group))
	}
	out.text = string(text)
	return out
}

// readPlate runs Tesseract on a line image and returns the normalised
// reading with per-character confidences.
func readPlate(c *gosseract.Client, line gocv.Mat) (reading, error) {
	buf, err := gocv.IMEncode(gocv.PNGFileExt, line)
	if err != nil {
		return reading{}, err
	}
	defer buf.Close()
	if err := c.SetImageFromBytes(buf.GetBytes()); err != nil {
		return reading{}, err
	}
	syms, err := c.GetBoundingBoxes(gosseract.RIL_SYMBOL)
	if err != nil {
		return reading{}, err
	}
	var b strings.Builder
	var confs []float64
	for _, w := range syms {
		t := watchlist.Normalize(w.Word)
		b.WriteString(t)
		for range len(t) {
			confs = append(confs, math.Max(0, math.Min(1, w.Confidence/100)))
		}
	}
	return reading{text: b.String(), confs: confs}, nil
}
