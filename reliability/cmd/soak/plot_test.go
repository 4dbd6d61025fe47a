package main

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeCharts draws a 10-minute run into a PNG that decodes.
func TestWriteCharts(t *testing.T) {
	var s []sample
	for i := 1; i <= 60; i++ {
		x := float64(i)
		s = append(s, sample{T: 10 * x, RSSMB: 120 + 100*math.Log(x), HeapMB: 14 + math.Sin(x),
			IngestP99: 300 + 50*math.Sin(x/3), QueryP99: 150 + 40*math.Cos(x/4)})
	}
	path := filepath.Join(t.TempDir(), "soak.png")
	if err := writeCharts(path, s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 600 {
		t.Fatalf("soak.png is %v", b)
	}
	if err := writeCharts(path, nil); err == nil {
		t.Fatal("no samples: want an error")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		min, max float64
		want     []string
	}{
		{0, 50, []string{"0", "10", "20", "30", "40", "50"}},
		{0, 600, []string{"0", "100", "200", "300", "400", "500", "600"}},
		{0, 487, []string{"0", "100", "200", "300", "400"}},
		{0, 1.25, []string{"0", "0.25", "0.5", "0.75", "1", "1.25"}},
		{0, 0.6, []string{"0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}},
		{3, 3, []string{"3"}},
	} {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(c.min, c.max) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("ticks(%v, %v) = %q, want %q", c.min, c.max, got, c.want)
		}
	}
}
