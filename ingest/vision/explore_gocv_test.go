//go:build gocv

package vision

import (
	"image"
	"os"
	"testing"

	"gocv.io/x/gocv"
)

// TestExploreLBP is the sweep behind lbpFaceSize/lbpGrid and the blur
// (run with VISION_SWEEP=1 -v): it prints, per setting, the worst
// same-person distance, the nearest stranger, and the identity margin.
func TestExploreLBP(t *testing.T) {
	if os.Getenv("VISION_SWEEP") == "" {
		t.Skip("set VISION_SWEEP=1 to run the descriptor sweep")
	}
	all := append(append(append(append([]int{}, roxanneEnrol...), roxanneHeld...), halEnrol...), halHeld...)
	frames := megamindFrames(t, all...)
	_, a := newTestPipeline(t, Options{}, nil)
	messi := gocv.IMRead(sample(t, "messi5.jpg"), gocv.IMReadColor)
	type crop struct {
		who string
		g   gocv.Mat
	}
	var crops []crop
	add := func(who string, m gocv.Mat) {
		g := gocv.NewMat()
		gocv.CvtColor(m, &g, gocv.ColorBGRToGray)
		f := detectFaces(&a.face, g, faceMinSize)
		if len(f) > 0 {
			c := g.Region(f[0])
			crops = append(crops, crop{who, c.Clone()})
		}
	}
	for _, i := range roxanneEnrol {
		add("rox_e", frames[i])
	}
	for _, i := range halEnrol {
		add("hal_e", frames[i])
	}
	for _, i := range roxanneHeld {
		add("rox_h", frames[i])
	}
	for _, i := range halHeld {
		add("hal_h", frames[i])
	}
	add("messi", messi)
	for _, size := range []int{64, 80, 96} {
		for _, grid := range []int{4, 5, 6, 8} {
			for _, blur := range []int{0, 3} {
				descs := make([][]float32, len(crops))
				for i, c := range crops {
					n := gocv.NewMat()
					gocv.Resize(c.g, &n, image.Pt(size, size), 0, 0, gocv.InterpolationArea)
					gocv.EqualizeHist(n, &n)
					if blur > 0 {
						gocv.GaussianBlur(n, &n, image.Pt(blur, blur), 0, 0, gocv.BorderDefault)
					}
					px, _ := n.DataPtrUint8()
					descs[i] = lbpDescriptorGrid(px, size, size, n.Step(), grid)
				}
				// for each held/messi: nearest same vs nearest other
				nearest := func(i int, who string) float64 {
					b := 9.0
					for j, c := range crops {
						if c.who == who {
							b = min(b, chiSquare(descs[i], descs[j]))
						}
					}
					return b
				}
				minMargin := 9.0
				worstSame, bestStranger := 0.0, 9.0
				for i, c := range crops {
					switch c.who {
					case "rox_h":
						s, o := nearest(i, "rox_e"), nearest(i, "hal_e")
						minMargin = min(minMargin, o-s)
						worstSame = max(worstSame, s)
					case "hal_h":
						s, o := nearest(i, "hal_e"), nearest(i, "rox_e")
						minMargin = min(minMargin, o-s)
						worstSame = max(worstSame, s)
					case "messi":
						bestStranger = min(nearest(i, "rox_e"), nearest(i, "hal_e"))
					}
				}
				t.Logf("size %d grid %d blur %d: worst same %.3f  stranger %.3f  gap %.3f  min id margin %.3f", size, grid, blur, worstSame, bestStranger, bestStranger-worstSame, minMargin)
			}
		}
	}
}
