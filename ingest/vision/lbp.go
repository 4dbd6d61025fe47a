package vision

import "math"

// LBPH face descriptor, pure Go over an 8-bit grey image (the gocv side
// crops, equalises and resizes; see face_gocv.go).
//
// Each interior pixel gets the 8-neighbour local binary pattern (radius 1,
// neighbours clockwise from the top-left, bit set when neighbour ≥ centre).
// The 58 "uniform" patterns (at most two 0/1 transitions around the circle)
// keep their own bin, all others share bin 58: 59 bins. The image is cut
// into lbpGrid×lbpGrid cells; each cell's histogram is normalised to sum
// 1/(cells), so a whole descriptor sums to 1 and the chi-square distance
// between two descriptors lies in [0, 2].

const (
	// lbpFaceSize is the side of the square face crop the descriptor is
	// computed on, cut into lbpGrid×lbpGrid cells of 16×16 pixels. Chosen
	// on the Megamind/messi test set (TestExploreLBP): of
	// crops 64/80/96 and grids 4/5/6/8, 64 px with a 4×4 grid and a 3×3
	// Gaussian pre-blur gave the widest gap between the worst same-person
	// distance and the nearest stranger; finer grids on small crops make
	// sparse, noisy cell histograms.
	lbpFaceSize = 64
	lbpGrid     = 4
	lbpBins     = 59
	// DescriptorLen is the length of a face descriptor.
	DescriptorLen = lbpGrid * lbpGrid * lbpBins
)

// uniformBin maps an 8-bit LBP code to its histogram bin.
var uniformBin = func() [256]uint8 {
	var t [256]uint8
	next := uint8(0)
	for c := 0; c < 256; c++ {
		transitions := 0
		for b := 0; b < 8; b++ {
			if (c>>b)&1 != (c>>((b+1)%8))&1 {
				transitions++
			}
		}
		if transitions <= 2 {
			t[c] = next
			next++
		} else {
			t[c] = lbpBins - 1
		}
	}
	return t
}()

// lbpDescriptor computes the descriptor of a w×h grey image stored row by
// row with the given stride.
func lbpDescriptor(px []byte, w, h, stride int) []float32 {
	return lbpDescriptorGrid(px, w, h, stride, lbpGrid)
}

func lbpDescriptorGrid(px []byte, w, h, stride, lbpGrid int) []float32 {
	desc := make([]float32, lbpGrid*lbpGrid*lbpBins)
	counts := make([]int, lbpGrid*lbpGrid)
	for y := 1; y < h-1; y++ {
		cy := y * lbpGrid / h
		row := y * stride
		for x := 1; x < w-1; x++ {
			c := px[row+x]
			var code uint8
			if px[row-stride+x-1] >= c {
				code |= 1 << 7
			}
			if px[row-stride+x] >= c {
				code |= 1 << 6
			}
			if px[row-stride+x+1] >= c {
				code |= 1 << 5
			}
			if px[row+x+1] >= c {
				code |= 1 << 4
			}
			if px[row+stride+x+1] >= c {
				code |= 1 << 3
			}
			if px[row+stride+x] >= c {
				code |= 1 << 2
			}
			if px[row+stride+x-1] >= c {
				code |= 1 << 1
			}
			if px[row+x-1] >= c {
				code |= 1
			}
			cell := cy*lbpGrid + x*lbpGrid/w
			desc[cell*lbpBins+int(uniformBin[code])]++
			counts[cell]++
		}
	}
	cells := float32(lbpGrid * lbpGrid)
	for cell, n := range counts {
		if n == 0 {
			continue
		}
		s := 1 / (float32(n) * cells)
		for b := 0; b < lbpBins; b++ {
			desc[cell*lbpBins+b] *= s
		}
	}
	return desc
}

// chiSquare is the symmetric chi-square distance Σ (a−b)²/(a+b); for two
// descriptors that each sum to 1 it lies in [0, 2].
func chiSquare(a, b []float32) float64 {
	var d float64
	for i := range a {
		s := a[i] + b[i]
		if s > 0 {
			t := a[i] - b[i]
			d += float64(t * t / s)
		}
	}
	return d
}

// similarity maps a chi-square distance to [0, 1]: 1 − d/2.
func similarity(d float64) float64 {
	s := 1 - d/2
	return math.Max(0, math.Min(1, s))
}
