package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// plot draws two stacked line charts (RSS MB; ingest and query p99 ms)
// over time into a PNG, with the standard library and x/image's basic
// font (already a module dependency): no plotting library needed.
func plot(path string, s []sample) error {
	const w, h, pad = 900, 600, 60
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	if len(s) == 0 {
		return errors.New("no samples")
	}
	tmax := s[len(s)-1].T
	panel := func(top int, title string, series []struct {
		name string
		c    color.RGBA
		get  func(sample) float64
	}) {
		bottom := top + h/2 - pad
		left, right := pad+20, w-20
		ymax := 0.0
		for _, sr := range series {
			for _, x := range s {
				ymax = math.Max(ymax, sr.get(x))
			}
		}
		if ymax == 0 {
			ymax = 1
		}
		ymax *= 1.1
		axis := color.RGBA{0, 0, 0, 255}
		for x := left; x <= right; x++ {
			img.Set(x, bottom, axis)
		}
		for y := top; y <= bottom; y++ {
			img.Set(left, y, axis)
		}
		label(img, left, top-8, title, axis)
		label(img, 4, top+8, fmt.Sprintf("%.0f", ymax), axis)
		label(img, 4, bottom, "0", axis)
		label(img, right-60, bottom+16, fmt.Sprintf("%.0f s", tmax), axis)
		px := func(t float64) int { return left + int(t/math.Max(tmax, 1)*float64(right-left)) }
		py := func(v float64) int { return bottom - int(v/ymax*float64(bottom-top)) }
		for k, sr := range series {
			label(img, left+10+k*120, top+14, sr.name, sr.c)
			for i := 1; i < len(s); i++ {
				line(img, px(s[i-1].T), py(sr.get(s[i-1])), px(s[i].T), py(sr.get(s[i])), sr.c)
			}
		}
	}
	type ser = struct {
		name string
		c    color.RGBA
		get  func(sample) float64
	}
	panel(pad, "memory (MB)", []ser{
		{"rss MB", color.RGBA{200, 30, 30, 255}, func(x sample) float64 { return x.RSSMB }},
		{"go heap MB (live)", color.RGBA{200, 120, 0, 255}, func(x sample) float64 { return x.HeapMB }},
	})
	panel(h/2+pad/2, "p99 latency (ms)", []ser{
		{"ingest p99", color.RGBA{30, 30, 200, 255}, func(x sample) float64 { return x.IngestP99 }},
		{"query p99", color.RGBA{20, 140, 20, 255}, func(x sample) float64 { return x.QueryP99 }},
	})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// line is Bresenham's, two pixels thick.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
