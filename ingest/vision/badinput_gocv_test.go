//go:build gocv

package vision

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gocv.io/x/gocv"

	"github.com/securevision/events/internal/vocab"
)

func detectFile(t *testing.T, path string, opts Options) (Summary, error) {
	t.Helper()
	opts.Logger = quietLogger(t)
	return Detect(context.Background(), DetectOptions{Source: Source{ID: "cam", URL: path}, Options: opts}, &memSink{}, nil)
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.avi")
	b := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(garbage, b, 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.avi")
	full, err := os.ReadFile(sample(t, "vtest.avi"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, full[:4096], 0o644); err != nil {
		t.Fatal(err)
	}
	badJPEG := filepath.Join(dir, "bad.jpg")
	if err := os.WriteFile(badJPEG, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path string
		opts Options
		want string
	}{
		"random bytes":    {path: garbage, want: "garbage.avi"},
		"truncated video": {path: truncated, want: "truncated.avi"},
		"missing file":    {path: filepath.Join(dir, "nope.mp4"), want: "no such file"},
		"directory":       {path: dir, want: "is a directory"},
		"bad image":       {path: badJPEG, want: "not an image"},
		"missing cascade": {path: badJPEG, opts: Options{FaceCascade: filepath.Join(dir, "nope.xml")}, want: "face cascade"},
		"not a cascade":   {path: badJPEG, opts: Options{PlateCascade: badJPEG}, want: "plate cascade"},
		"stream":          {path: "rtsp://127.0.0.1:1/x", want: "detect reads files"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := detectFile(t, tc.path, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// Megamind_bugy.avi is OpenCV's sample of a damaged stream: it must be
// read as far as it goes, without a crash.
func TestBuggyVideo(t *testing.T) {
	st, err := detectFile(t, sample(t, "Megamind_bugy.avi"), Options{FPS: 2, PlateCascade: NoCascade})
	t.Logf("Megamind_bugy.avi: %v, err %v", st, err)
	if err != nil && !strings.Contains(err.Error(), "no frame") {
		t.Fatal(err)
	}
}

func TestGalleryBadImages(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	// One unreadable image, one image without a face, one good face.
	os.WriteFile(filepath.Join(dir, "alice", "broken.jpg"), []byte("garbage"), 0o644)
	noFace := gocv.NewMatWithSize(400, 400, gocv.MatTypeCV8UC3)
	defer noFace.Close()
	gocv.IMWrite(filepath.Join(dir, "alice", "noface.jpg"), noFace)
	messi := gocv.IMRead(sample(t, "messi5.jpg"), gocv.IMReadColor)
	defer messi.Close()
	gocv.IMWrite(filepath.Join(dir, "alice", "good.jpg"), messi)

	reg := prometheus.NewRegistry()
	p, _ := newTestPipeline(t, Options{GalleryDir: dir, Registerer: reg}, nil)
	g := p.gallery.Load()
	if g.persons != 1 || len(g.descs) != 1 {
		t.Fatalf("gallery %d persons %d images", g.persons, len(g.descs))
	}
	if n := counterValue(p.m.errors.WithLabelValues("gallery", errGallery)); n != 2 {
		t.Fatalf("gallery errors %v, want 2", n)
	}
	// Reload after the folder vanished keeps the old gallery.
	os.RemoveAll(dir)
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a removed gallery succeeded")
	}
	if p.gallery.Load() != g {
		t.Fatal("failed Reload replaced the gallery")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{Sources: []Source{{"a", "x"}}}, nil); err == nil {
		t.Fatal("nil sink accepted")
	}
	if _, err := New(Options{Sources: []Source{{"a", "x"}, {"a", "y"}}}, &memSink{}); err == nil {
		t.Fatal("duplicate source accepted")
	}
}

// TestRunFileSourceDedup runs the pipeline on a file source: the still
// image analysed gives one event; the same file through Run with a sink
// that fails counts the error and does not crash.
func TestRunSources(t *testing.T) {
	sink := &memSink{}
	img := sample(t, "messi5.jpg")
	reg := prometheus.NewRegistry()
	p, err := New(Options{Sources: []Source{{"a", img}, {"b", img}, {"dead", "rtsp://127.0.0.1:1/none"}},
		Logger: quietLogger(t), Registerer: reg, PlateCascade: NoCascade}, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	bySrc := map[string]int{}
	for _, e := range sink.events() {
		bySrc[e.Source]++
	}
	if bySrc["a"] != 1 || bySrc["b"] != 1 {
		t.Fatalf("events per source %v", bySrc)
	}
	if n := counterValue(p.m.errors.WithLabelValues("dead", errOpen)); n < 1 {
		t.Fatalf("dead stream open errors %v", n)
	}

	failing := &memSink{err: errors.New("disk full")}
	p2, err := New(Options{Sources: []Source{{"a", img}}, Logger: quietLogger(t), Registerer: reg, PlateCascade: NoCascade}, failing)
	if err != nil {
		t.Fatal(err)
	}
	p2.Run(context.Background())
	if n := counterValue(p2.m.errors.WithLabelValues("a", errAppend)); n != 1 {
		t.Fatalf("append errors %v", n)
	}
}

// TestVideoDedup analyses Megamind.avi (11 s) with the default 10 s
// cooldown: a handful of events, not one per frame.
func TestVideoDedup(t *testing.T) {
	frames := 0
	sink := &memSink{}
	all := append(append([]int{}, roxanneEnrol...), halEnrol...)
	fr := megamindFrames(t, all...)
	dir := writeGallery(t, fr, map[string][]int{"roxanne": roxanneEnrol, "hal": halEnrol})
	st, err := Detect(context.Background(), DetectOptions{
		Source:  Source{ID: "cam", URL: sample(t, "Megamind.avi")},
		Options: Options{GalleryDir: dir, Logger: quietLogger(t), PlateCascade: NoCascade},
		Start:   time.UnixMilli(1_700_000_000_000),
	}, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	frames = st.Frames
	evs := sink.events()
	names := map[string]int{}
	for _, e := range evs {
		if e.Type == vocab.FaceMatch {
			names[e.Face.PersonName]++
		}
		if e.TsMs < 1_700_000_000_000 || e.TsMs > 1_700_000_000_000+12_000 {
			t.Errorf("ts_ms %d outside the file's span", e.TsMs)
		}
	}
	t.Logf("Megamind.avi: %d frames analysed, %d events %v", frames, len(evs), names)
	if frames < 50 || len(evs) == 0 || len(evs) > 12 {
		t.Fatalf("%d events from %d frames, want a few (one per person per 10 s window)", len(evs), frames)
	}
	if names["roxanne"] == 0 || names["hal"] == 0 {
		t.Errorf("names %v: want both roxanne and hal", names)
	}
	for n, c := range names {
		if c > 2 {
			t.Errorf("%s: %d events in an 11 s clip with a 10 s cooldown, want ≤ 2", n, c)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
