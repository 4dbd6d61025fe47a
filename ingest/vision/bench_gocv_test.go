//go:build gocv

package vision

import (
	"image"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
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

// cpuTime is the CPU time (user + system, all threads) of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports frames/s (wall clock) and cpu_ms/frame (CPU time of
// all threads, which depends less on what else the machine runs: the
// real-time budget of N frames/s on C cores is C×1000/N cpu_ms/frame).
func reportRate(b *testing.B, frames int, wall, cpu time.Duration) {
	b.ReportMetric(float64(frames)/wall.Seconds(), "frames/s")
	b.ReportMetric(cpu.Seconds()*1000/float64(frames), "cpu_ms/frame")
}

// benchThreads sets OpenCV's thread count for a benchmark of sources
// concurrent sources, as New does for a pipeline with that many sources;
// VISION_CV_THREADS overrides it (experiments).
func benchThreads(b *testing.B, sources int) {
	n := threadsForSources(sources)
	if v, err := strconv.Atoi(os.Getenv("VISION_CV_THREADS")); err == nil {
		n = v
	}
	setCVThreads(n)
	b.Logf("OpenCV threads: %d", getCVThreads())
}

// stageMs reports the mean milliseconds per analysed frame of each stage.
func reportStages(b *testing.B, reg *prometheus.Registry, frames int) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "securevision_vision_frames_total" {
			// Frames the motion gate let through to detection.
			n := 0.0
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
			b.ReportMetric(n/float64(frames), "detected/frame")
		}
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
	benchThreads(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		a.analyse(frames[i%len(frames)], int64(i)*200)
		a.dd.expire(int64(i) * 200)
	}
	reportRate(b, b.N, time.Since(start), cpuTime()-cpu)
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
	benchThreads(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		a.analyse(frames[i%len(frames)], int64(i)*200)
		a.dd.expire(int64(i) * 200)
	}
	reportRate(b, b.N, time.Since(start), cpuTime()-cpu)
	reportStages(b, reg, b.N)
}

// benchmarkTwoSources: two analysers (two sources of one pipeline) analyse
// vtest.avi frames concurrently, as two cameras at Options.FPS do; b.N
// frames in total, half each. frames/s is the total throughput, which
// must be ≥ 2×DefaultFPS for two sources to keep real time.
func benchmarkTwoSources(b *testing.B, size image.Point) {
	frames := benchFrames(b, 50, size)
	reg := prometheus.NewRegistry()
	p, a0 := newTestPipeline(b, Options{Registerer: reg}, nil)
	a1, err := p.newAnalyser(Source{ID: "test_cam2", URL: "/dev/null"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a1.close)
	benchThreads(b, 2)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	done := make(chan struct{})
	for w, a := range []*analyser{a0, a1} {
		go func() {
			defer func() { done <- struct{}{} }()
			// Different starting frames: the two cameras see different
			// scenes.
			for i := w; i < b.N; i += 2 {
				f := frames[(i/2+w*len(frames)/2)%len(frames)]
				a.analyse(f, int64(i/2)*200)
				a.dd.expire(int64(i/2) * 200)
			}
		}()
	}
	<-done
	<-done
	reportRate(b, b.N, time.Since(start), cpuTime()-cpu)
	reportStages(b, reg, b.N)
}

// BenchmarkTwoSourcesVtest: two 768×576 sources analysed concurrently.
func BenchmarkTwoSourcesVtest(b *testing.B) { benchmarkTwoSources(b, image.Point{}) }

// BenchmarkTwoSources720p: two 1280×720 sources analysed concurrently.
func BenchmarkTwoSources720p(b *testing.B) { benchmarkTwoSources(b, image.Pt(1280, 720)) }
