package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// series is one line of a chart: a column of the samples.
type series struct {
	name  string
	color color.RGBA
	dash  bool
	get   func(sample) float64
}

// writeCharts writes soak.png: two charts over the run, one above the
// other: memory (RSS and live Go heap, MB) and p99 latency (ingest and
// queries, ms), each with a title, axes labelled with their units, ticks,
// gridlines and a legend (gonum/plot).
func writeCharts(path string, s []sample) error {
	if len(s) == 0 {
		return errors.New("no samples")
	}
	mem, err := chart(s, "Memory of the server process", "MB", []series{
		{"RSS", color.RGBA{200, 30, 30, 255}, false, func(x sample) float64 { return x.RSSMB }},
		{"Go heap live at last GC", color.RGBA{220, 130, 0, 255}, true, func(x sample) float64 { return x.HeapMB }},
	})
	if err != nil {
		return err
	}
	lat, err := chart(s, fmt.Sprintf("p99 latency per %s window", *interval), "ms", []series{
		{"ingest (POST /ingest, 50 events)", color.RGBA{30, 30, 200, 255}, false, func(x sample) float64 { return x.IngestP99 }},
		{"queries (GET /events, /events/{id}, /health)", color.RGBA{20, 140, 20, 255}, true, func(x sample) float64 { return x.QueryP99 }},
	})
	if err != nil {
		return err
	}
	const w, h = 24 * vg.Centimeter, 18 * vg.Centimeter
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(120), vgimg.UseBackgroundColor(color.White))
	rows := [][]*plot.Plot{{mem}, {lat}}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 5, PadY: vg.Millimeter * 8}
	canvases := plot.Align(rows, tiles, draw.New(img))
	for i, r := range rows {
		r[0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chart is one panel: the series over time since the start, from 0 up.
func chart(s []sample, title, unit string, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = unit
	p.X.Min, p.Y.Min = 0, 0
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 2*vg.Millimeter, -vg.Millimeter
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 210}
	grid.Horizontal.Color = color.Gray{Y: 210}
	p.Add(grid)
	for _, sr := range ss {
		xy := make(plotter.XYs, len(s))
		for i, x := range s {
			xy[i] = plotter.XY{X: x.T, Y: sr.get(x)}
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = sr.color, vg.Points(1.5)
		if sr.dash {
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		pts.Color, pts.Shape, pts.Radius = sr.color, draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(l, pts)
		p.Legend.Add(sr.name, l, pts)
	}
	// Headroom above the highest point for the legend.
	p.Y.Max *= 1.25
	if p.Y.Max == 0 {
		p.Y.Max = 1
	}
	return p, nil
}

// niceTicks labels about six round values (steps of 1, 2, 2.5 or 5
// times a power of ten) with their gridlines; plot.DefaultTicks labels
// only two or three, with trailing zeros (25.00).
type niceTicks struct{}

func (niceTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) {
		return []plot.Tick{{Value: min, Label: strconv.FormatFloat(min, 'g', 12, 64)}}
	}
	raw := (max - min) / 6
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * pow
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	var ts []plot.Tick
	for i := math.Ceil(min / step); i*step <= max+step*1e-9; i++ {
		v := i * step
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 12, 64)})
		if h := v + step/2; h < max {
			ts = append(ts, plot.Tick{Value: h}) // unlabelled minor tick
		}
	}
	return ts
}
