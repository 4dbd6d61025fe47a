package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/securevision/events/bench"
)

// Target of section g: two sources analysed at 5 frames/s each.
const (
	visionSources   = 2
	visionSourceFPS = 5
	visionNeedFPS   = visionSources * visionSourceFPS
	// 1280×720 over 768×576: the decode estimate for 720p streams.
	visionPixelRatio = 1280.0 * 720 / (768 * 576)
)

// visionStages are the stage labels of securevision_vision_stage_seconds
// that the Analyse benchmarks report as <stage>_ms/frame.
var visionStages = []string{"face_detect", "recognise", "plate_detect", "ocr"}

// runVision runs the gocv benchmarks of ingest/vision
// (bench_gocv_test.go): analysis of vtest.avi frames at 768×576 and
// upscaled to 1280×720, analysis of plate scenes, and decoding.
func runVision(e *env, s *bench.Section) error {
	if out, err := exec.CommandContext(e.ctx, "pkg-config", "--exists", "opencv4").CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if msg != "" {
			msg = ": " + oneLine(msg)
		}
		s.Skipped = fmt.Sprintf("OpenCV 4 is not installed (`pkg-config --exists opencv4` failed: %v%s); the vision pipeline is built with -tags gocv "+
			"and needs it (apt-get install libopencv-dev opencv-doc, or make deps)", err, msg)
		return nil
	}
	raw, rs, cmd, err := bench.RunGoBench(e.ctx, e.cfg.moduleDir, e.progress,
		"-tags", "gocv", "-run", "^$", "-bench", ".", "-benchtime", "20x", "./ingest/vision/")
	s.Commands = append(s.Commands, cmd)
	if len(rs) == 0 {
		if err == nil {
			err = errors.New("no benchmark results in the output")
		}
		if strings.Contains(raw, "--- SKIP") {
			err = fmt.Errorf("%w (benchmarks skipped: %s)", err, skipReasons(raw))
		}
		return err
	}
	if skips := skipReasons(raw); skips != "" {
		s.Notes = append(s.Notes, "**Skipped benchmarks:** "+skips)
	}

	decodeMs := -1.0
	if ns, k := bench.Median(rs, "DecodeVtest", "ns/op"); k > 0 {
		decodeMs = ns / 1e6
	}
	ms := func(v float64) string {
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	}
	// withDecode is frames/s of decode + analysis, one frame at a time.
	withDecode := func(fps, dec float64) float64 {
		if fps <= 0 || dec < 0 {
			return 0
		}
		return 1000 / (1000/fps + dec)
	}

	type row struct {
		name, frame string
		decode      float64 // ms, measured or estimated
		decodeNote  string
	}
	rows := []row{
		{"AnalyseVtest", "vtest.avi 768×576", decodeMs, "measured (DecodeVtest)"},
		{"Analyse720p", "vtest.avi upscaled to 1280×720", decodeMs * visionPixelRatio, fmt.Sprintf("estimate: DecodeVtest × %.2f (pixel ratio)", visionPixelRatio)},
		{"AnalysePlates", "800×600 scene with one plate", -1, ""},
	}
	header := []string{"benchmark", "frames", "analysis frames/s", "decode ms/frame", "decode + analysis frames/s"}
	for _, st := range visionStages {
		header = append(header, st+" ms/frame")
	}
	header = append(header, "B/op", "allocs/op")
	t := bench.Table{Header: header}
	fpsOf := map[string]float64{} // decode + analysis
	for _, r := range rows {
		fps, k := bench.Median(rs, r.name, "frames/s")
		if k == 0 {
			continue
		}
		dec, full := "—", "—"
		if r.decode >= 0 {
			dec = ms(r.decode) + ", " + r.decodeNote
			fpsOf[r.name] = withDecode(fps, r.decode)
			full = fmt.Sprintf("%.2f", fpsOf[r.name])
		}
		line := []string{r.name, r.frame, fmt.Sprintf("%.2f", fps), dec, full}
		for _, st := range visionStages {
			if v, k := bench.Median(rs, r.name, st+"_ms/frame"); k > 0 {
				line = append(line, ms(v))
			} else {
				line = append(line, "— (not run)")
			}
		}
		bop, _ := bench.Median(rs, r.name, "B/op")
		al, _ := bench.Median(rs, r.name, "allocs/op")
		line = append(line, fmt.Sprintf("%.0f", bop), fmt.Sprintf("%.0f", al))
		t.Rows = append(t.Rows, line)
	}
	if len(t.Rows) > 0 {
		s.Tables = append(s.Tables, t)
	}
	s.Text = append(s.Text, "`go test -bench` over ingest/vision/bench_gocv_test.go with a fixed 20 iterations per benchmark. "+
		"The Analyse benchmarks run the pipeline's analyser (face detection + recognition, plate detection, OCR when a plate candidate passes) "+
		"on frames decoded beforehand, one frame at a time on one goroutine (OpenCV may use more threads inside); "+
		"the stage columns are the mean milliseconds per analysed frame from the pipeline's own securevision_vision_stage_seconds histogram, "+
		"and “— (not run)” means the stage never ran on those frames (recognise runs only for a detected face, OCR only for a plate candidate). "+
		"AnalysePlates uses generated scenes that each hold a plate, so that plate detection and OCR are timed where OCR actually runs. "+
		"Decode is BenchmarkDecodeVtest (XVID 768×576 read frame by frame); the benchmarks have no 1280×720 stream, so the 720p decode "+
		"is an estimate scaled by the pixel count. Decode + analysis frames/s = 1 / (analysis time + decode time) per frame.")
	if decodeMs >= 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("A file source reads (decodes) every frame of the stream, analysed or not: at F source frames/s a source spends "+
			"F × %s per second decoding at 768×576 (%s at 25 fps), on top of the analysis of its %d analysed frames/s.",
			ms(decodeMs), ms(25*decodeMs), visionSourceFPS))
	}

	// Real time for two sources at 5 fps.
	vt, hasVt := fpsOf["AnalyseVtest"]
	hd, hasHD := fpsOf["Analyse720p"]
	if !hasVt && !hasHD {
		s.Check(fmt.Sprintf("%d sources at %d fps in real time", visionSources, visionSourceFPS), fmt.Sprintf("≥ %d frames/s", visionNeedFPS),
			"no Analyse result with a decode time", false)
	} else {
		var parts []string
		if hasHD {
			parts = append(parts, fmt.Sprintf("1280×720 %.2f frames/s", hd))
		}
		if hasVt {
			parts = append(parts, fmt.Sprintf("768×576 %.2f frames/s", vt))
		}
		measured := strings.Join(parts, "; ") + " (decode + analysis)"
		pass := true
		switch {
		case hasHD && hd >= visionNeedFPS:
			measured += ": keeps up at 1280×720"
		case hasVt && vt >= visionNeedFPS:
			measured += ": keeps up at 768×576 only, not at 1280×720"
		default:
			pass = false
			short := max(vt, hd)
			measured += fmt.Sprintf(": keeps up at neither (%.1f%% of the %d frames/s needed; about %.1f sources at %d fps)",
				100*short/visionNeedFPS, visionNeedFPS, short/visionSourceFPS, visionSourceFPS)
		}
		s.Check(fmt.Sprintf("%d sources at %d fps in real time on this machine", visionSources, visionSourceFPS),
			fmt.Sprintf("≥ %d frames/s at 1280×720 or 768×576", visionNeedFPS), measured, pass)
	}
	s.Notes = append(s.Notes, fmt.Sprintf("The real-time check asks one analyser, frame after frame, for %d × %d = %d frames/s on this shared machine; "+
		"two sources run in parallel could use a second core when one is free.", visionSources, visionSourceFPS, visionNeedFPS))
	return err
}

// skipReasons collects the "--- SKIP" lines of go test output with the
// reason printed under each.
func skipReasons(raw string) string {
	var out []string
	lines := strings.Split(raw, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		name := strings.TrimSpace(strings.TrimPrefix(l, "--- SKIP:"))
		if i+1 < len(lines) {
			name += " (" + strings.TrimSpace(lines[i+1]) + ")"
		}
		out = append(out, name)
	}
	return strings.Join(out, "; ")
}
