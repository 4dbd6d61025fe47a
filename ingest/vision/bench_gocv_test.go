//go:build gocv

package vision

import (
	"image"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gocv.io/x/gocv"
)

// benchFrames decodes n frames of vtest.avi (768×576), optionally
// upscaled to size.
func benchFrames(b *testing.B, n int, size image.Point) []gocv.Mat {
	vc, err := gocv.VideoCaptureFile(sample(b, "vtest.avi"))
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	var out []gocv.Mat
	m := gocv.NewMat()
	defer m.Close()
	for len(out) < n && vc.Read(&m) {
		f := gocv.NewMat()
		if size != (image.Point{}) {
			gocv.Resize(m, &f, size, 0, 0, gocv.InterpolationLinear)
		} else {
			m.CopyTo(&f)
		}
		out = append(out, f)
	}
	b.Cleanup(func() {
		for _, f := range out {
			f.Close()
		}
	})
	return out
}

// stageMs reports the mean milliseconds per analysed frame of each stage.
func reportStages(b *testing.B, reg *prometheus.Registry, frames int) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "securevision_vision_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			stage := labelValue(m, "stage")
			b.ReportMetric(m.GetHistogram().GetSampleSum()*1000/float64(frames), stage+"_ms/frame")
		}
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func benchmarkAnalyse(b *testing.B, size image.Point) {
	frames := benchFrames(b, 50, size)
	reg := prometheus.NewRegistry()
	_, a := newTestPipeline(b, Options{Registerer: reg}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a.analyse(frames[i%len(frames)], int64(i)*200)
		a.dd.expire(int64(i) * 200)
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
	reportStages(b, reg, b.N)
}

// BenchmarkAnalyseVtest: analysis (faces + plates, OCR when a candidate
// passes) of one 768×576 vtest.avi frame.
func BenchmarkAnalyseVtest(b *testing.B) { benchmarkAnalyse(b, image.Point{}) }

// BenchmarkAnalyse720p: the same frames upscaled to 1280×720.
func BenchmarkAnalyse720p(b *testing.B) { benchmarkAnalyse(b, image.Pt(1280, 720)) }

// BenchmarkDecodeVtest: decoding vtest.avi (XVID 768×576) frame by frame.
func BenchmarkDecodeVtest(b *testing.B) {
	path := sample(b, "vtest.avi")
	m := gocv.NewMat()
	defer m.Close()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !vc.Read(&m) {
			vc.Close()
			if vc, err = gocv.VideoCaptureFile(path); err != nil {
				b.Fatal(err)
			}
			vc.Read(&m)
		}
	}
	vc.Close()
}

// BenchmarkAnalysePlates: analysis of 800×600 scenes that each hold one
// plate (the TestPlateReading generator), so plate_detect and ocr are
// measured on frames where OCR actually runs.
func BenchmarkAnalysePlates(b *testing.B) {
	pr := newPlateRenderer(b)
	bgs := loadBackgrounds(b)
	r := rand.New(rand.NewPCG(5, 6))
	var frames []gocv.Mat
	for range 20 {
		s, _ := plateScene(b, pr, bgs, r, randomPlate(r))
		frames = append(frames, s)
	}
	b.Cleanup(func() {
		for _, f := range frames {
			f.Close()
		}
	})
	reg := prometheus.NewRegistry()
	_, a := newTestPipeline(b, Options{Registerer: reg}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		a.analyse(frames[i%len(frames)], int64(i)*200)
		a.dd.expire(int64(i) * 200)
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
	reportStages(b, reg, b.N)
}
