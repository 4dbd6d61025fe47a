//go:build gocv

package vision

import (
	"image"
	"image/color"
	"testing"

	"gocv.io/x/gocv"
)

// TestMotionGate: a static scene is analysed on its first frame and then
// every staticRecheckMs; a change is analysed at once, with faces searched
// around the moving region only.
func TestMotionGate(t *testing.T) {
	g := newMotionGate()
	defer g.close()
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 0, 0, 0), 576, 768, gocv.MatTypeCV8UC1)
	defer frame.Close()
	pad := motionPad(frame.Cols())
	step := []struct {
		ts   int64
		move bool
		want bool
	}{
		{0, false, true}, // first frame
		{200, false, false},
		{400, false, false},
		{600, true, true}, // something appears
		{800, false, false},
		{2600, false, true}, // recheck
	}
	for _, s := range step {
		if s.move {
			gocv.Rectangle(&frame, image.Rect(300, 200, 360, 260), color.RGBA{255, 255, 255, 0}, -1)
		}
		if got := g.due(frame, s.ts, pad); got != s.want {
			t.Fatalf("ts %d: due %v, want %v", s.ts, got, s.want)
		}
		if s.move {
			if len(g.regions) != 1 || !image.Rect(300, 200, 360, 260).In(g.regions[0]) {
				t.Fatalf("regions %v, want one around (300,200)-(360,260)", g.regions)
			}
		} else if g.regions != nil {
			t.Fatalf("ts %d: regions %v on a frame analysed without motion", s.ts, g.regions)
		}
		g.analysed(0)
	}
	// A frame with a sighting is re-analysed every staticHitRecheckMs.
	g.analysed(1)
	if g.due(frame, 2800, pad) || !g.due(frame, 2600+staticHitRecheckMs, pad) {
		t.Fatal("static frame with a sighting not re-analysed after staticHitRecheckMs")
	}
}
