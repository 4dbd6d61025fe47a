//go:build gocv

package vision

import (
	"image"

	"gocv.io/x/gocv"
)

const (
	// motionWidth is the width of the grey thumbnail compared between
	// frames: area averaging down to it removes sensor and compression
	// noise, and the comparison costs next to nothing beside detection.
	motionWidth = 160
	// motionDelta is the grey-level change of a thumbnail pixel that
	// counts as motion.
	motionDelta = 16
	// motionPerMille of the thumbnail's pixels must have changed for a
	// frame to count as moving: 0.2 % is ~40 of 160×120 pixels, less
	// than a 40-px face entering a 768-px frame.
	motionPerMille = 2
	// staticRecheckMs: a static scene is still analysed this often (frame
	// time), so a change too slow or too small for the gate (dusk, a
	// person standing still before a face turns) is not missed for long.
	staticRecheckMs = 2000
	// staticHitRecheckMs: a static scene whose last analysed frame held a
	// face or plate is analysed this often, so a person standing still
	// or a parked car keeps being sighted (de-duplication then emits one
	// event per cooldown) without OCR and recognition on every frame.
	staticHitRecheckMs = 1000
	// motionFullPerCent: when the moving regions (with their margins)
	// cover more than this share of the frame, faces are searched in the
	// whole frame.
	motionFullPerCent = 60
)

// motionGate decides which frames need detection, and where faces are
// searched. A frame is analysed when it differs from the last analysed
// frame (grey thumbnails compared pixel by pixel), every staticRecheckMs
// (staticHitRecheckMs when the last analysed frame held a face or plate),
// and always for the first frame of a source (a still image, the first
// frame of a file). Frames of a static scene in between are skipped: they
// cannot hold a face or plate the last analysed frame did not.
//
// When a frame is analysed because it moved, faces are searched only
// around the regions that changed (padded by two minimum face sizes),
// unless the last analysed frame held a face (then the whole frame, so a
// person who stopped moving is still found) or the regions cover most
// of the frame.
type motionGate struct {
	thumb, ref, diff, kernel gocv.Mat
	refMs                    int64
	hits                     int
	haveRef                  bool
	// regions are the moving parts of the frame just admitted, in frame
	// pixels; nil: search the whole frame.
	regions []image.Rectangle
}

func newMotionGate() motionGate {
	return motionGate{thumb: gocv.NewMat(), ref: gocv.NewMat(), diff: gocv.NewMat(),
		kernel: gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))}
}

func (g *motionGate) close() {
	g.thumb.Close()
	g.ref.Close()
	g.diff.Close()
	g.kernel.Close()
}

// due reports whether gray (the frame at tsMs) needs analysis; pad is
// the margin, in frame pixels, added around moving regions. When it
// does, gray's thumbnail becomes the reference for later frames and
// g.regions says where to search faces.
func (g *motionGate) due(gray gocv.Mat, tsMs int64, pad int) bool {
	g.regions = nil
	if gray.Cols() == 0 || gray.Rows() == 0 {
		return true
	}
	h := max(1, gray.Rows()*motionWidth/gray.Cols())
	gocv.Resize(gray, &g.thumb, image.Pt(motionWidth, h), 0, 0, gocv.InterpolationArea)
	recheck := int64(staticRecheckMs)
	if g.hits > 0 {
		recheck = staticHitRecheckMs
	}
	forced := !g.haveRef || tsMs < g.refMs || tsMs-g.refMs >= recheck ||
		g.ref.Rows() != g.thumb.Rows() || g.ref.Cols() != g.thumb.Cols()
	moved := false
	if !forced {
		gocv.AbsDiff(g.thumb, g.ref, &g.diff)
		gocv.Threshold(g.diff, &g.diff, motionDelta, 255, gocv.ThresholdBinary)
		moved = gocv.CountNonZero(g.diff)*1000 >= motionPerMille*g.thumb.Rows()*g.thumb.Cols()
		if moved && g.hits == 0 {
			g.regions = g.movingRegions(gray.Cols(), gray.Rows(), pad)
		}
	}
	if !forced && !moved {
		return false
	}
	g.thumb, g.ref = g.ref, g.thumb
	g.refMs, g.haveRef = tsMs, true
	return true
}

// movingRegions turns the thresholded difference in g.diff into padded,
// merged rectangles in frame pixels (w×h); nil when they cover most of
// the frame.
func (g *motionGate) movingRegions(w, h, pad int) []image.Rectangle {
	gocv.Dilate(g.diff, &g.diff, g.kernel)
	contours := gocv.FindContours(g.diff, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer contours.Close()
	s := float64(w) / float64(g.diff.Cols())
	frame := image.Rect(0, 0, w, h)
	var rs []image.Rectangle
	for i := 0; i < contours.Size(); i++ {
		r := gocv.BoundingRect(contours.At(i))
		r = image.Rect(int(float64(r.Min.X)*s)-pad, int(float64(r.Min.Y)*s)-pad,
			int(float64(r.Max.X)*s+0.5)+pad, int(float64(r.Max.Y)*s+0.5)+pad).Intersect(frame)
		rs = append(rs, r)
	}
	// Merge overlapping rectangles until none overlap.
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rs) && !merged; i++ {
			for j := i + 1; j < len(rs); j++ {
				if rs[i].Overlaps(rs[j]) {
					rs[i] = rs[i].Union(rs[j])
					rs = append(rs[:j], rs[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	total := 0
	for _, r := range rs {
		total += area(r)
	}
	if len(rs) == 0 || total*100 > motionFullPerCent*w*h {
		return nil
	}
	return rs
}

// analysed records how many faces and plates the analysed frame held.
func (g *motionGate) analysed(hits int) { g.hits = hits }
