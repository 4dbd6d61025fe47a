//go:build gocv

package vision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otiai10/gosseract/v2"
	"gocv.io/x/gocv"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/ingest/watchlist"
	"github.com/securevision/events/internal/vocab"
)

const (
	// snapshotQuality is the JPEG quality of event crops: readable faces
	// and plates at a few kB each.
	snapshotQuality = 85
	// snapshotPad enlarges a detection box on each side for the snapshot,
	// as a fraction of its size, so the crop shows some context.
	snapshotPad = 0.2
	// appendTimeout bounds the final flush at shutdown, whose context is
	// detached from the cancelled run context.
	appendTimeout = 5 * time.Second
	// Reconnect back-off for streams and devices (tsdb-style doubling).
	backoffMin = time.Second
	backoffMax = 30 * time.Second
	// maxEmptyReads consecutive failed reads end a live connection (and a
	// file: a file that yields this many empty frames in a row is
	// treated as ended).
	maxEmptyReads = 25
)

// Available reports whether this binary was built with OpenCV.
func Available() bool { return true }

// Pipeline turns camera frames into events. Create it with New, run it with
// Run; Reload may be called from any goroutine.
type Pipeline struct {
	opts Options
	sink ingest.Sink
	m    *metrics
	log  *slog.Logger

	gallery atomic.Pointer[gallery]

	enrol struct {
		sync.Mutex
		// cc is the cascade used for enrolment only (a cascade must not
		// be shared between goroutines).
		cc gocv.CascadeClassifier
		// store caches the store gallery's descriptors by image id
		// (enrolStore).
		store map[uint64][]float32
	}
}

// New checks the options, loads the cascades and Tesseract once to fail
// early, and enrols the gallery.
func New(opts Options, sink ingest.Sink) (*Pipeline, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if sink == nil {
		return nil, errors.New("vision: nil sink")
	}
	p := &Pipeline{opts: opts, sink: sink, m: newMetrics(opts.Registerer), log: opts.Logger}
	// OpenCV's thread pool is per process: share the cores out between
	// the sources, which are analysed concurrently (see threadsForSources).
	setCVThreads(threadsForSources(len(opts.Sources)))
	p.enrol.cc = gocv.NewCascadeClassifier()
	if err := loadCascade(&p.enrol.cc, opts.FaceCascade, "face"); err != nil {
		p.enrol.cc.Close()
		return nil, err
	}
	if opts.PlateCascade != NoCascade {
		cc := gocv.NewCascadeClassifier()
		err := loadCascade(&cc, opts.PlateCascade, "plate")
		cc.Close()
		if err != nil {
			p.enrol.cc.Close()
			return nil, err
		}
	}
	ocr, err := newOCR()
	if err != nil {
		p.enrol.cc.Close()
		return nil, err
	}
	ocr.Close()
	if err := p.Reload(); err != nil {
		p.enrol.cc.Close()
		return nil, err
	}
	return p, nil
}

func loadCascade(cc *gocv.CascadeClassifier, path, what string) error {
	// OpenCV throws a C++ exception, which aborts the process, on a file
	// that is not well-formed XML: check it in Go first.
	if err := checkCascadeFile(path); err != nil {
		return fmt.Errorf("vision: %s cascade %s: %w", what, path, err)
	}
	if !cc.Load(path) {
		return fmt.Errorf("vision: %s cascade %s cannot be loaded (missing or not a cascade XML; Debian ships them in opencv-data)", what, path)
	}
	return nil
}

// Reload re-enrols the gallery: GalleryDir's images (SIGHUP) and the
// store's (Options.StoreGallery; after every gallery change). On error the
// previous gallery stays in force. The analysers pick the new gallery up
// at their next face: it is swapped in atomically.
func (p *Pipeline) Reload() error {
	p.enrol.Lock()
	defer p.enrol.Unlock()
	var store []GalleryImage
	if p.opts.StoreGallery != nil {
		var err error
		if store, err = p.opts.StoreGallery(); err != nil {
			return fmt.Errorf("vision: store gallery: %w", err)
		}
	}
	g, err := loadGallery(p.opts.GalleryDir, &p.enrol.cc, p.log, p.m)
	if err != nil {
		return err
	}
	p.enrol.store = enrolStore(g, store, p.enrol.store, &p.enrol.cc, p.log, p.m)
	p.gallery.Store(g)
	return nil
}

// Run analyses every source, one goroutine each, until ctx is done or, for
// file sources, the file ends. It returns nil (per-source failures are
// logged and counted; streams and devices reconnect).
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, src := range p.opts.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runSource(ctx, src)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Pipeline) runSource(ctx context.Context, src Source) {
	a, err := p.newAnalyser(src)
	if err != nil {
		p.m.errors.WithLabelValues(src.ID, errOpen).Inc()
		p.log.Error("vision source not started", "source", src.ID, "err", err)
		return
	}
	defer a.close()
	p.log.Info("vision source started", "source", src.ID, "kind", src.Kind())
	switch src.Kind() {
	case "file":
		st, err := a.runFile(ctx, p.opts.now(), nil)
		if err != nil {
			p.log.Error("vision file source failed", "source", src.ID, "err", err)
			return
		}
		p.log.Info("vision file source finished", "source", src.ID, "frames", st.Frames,
			"face_events", st.Events[vocab.FaceMatch], "plate_events", st.Events[vocab.PlateRead])
	default:
		a.runLive(ctx)
	}
}

// analyser owns the per-source OpenCV and Tesseract state; it is used by
// one goroutine only.
type analyser struct {
	p       *Pipeline
	src     Source
	region  string
	face    gocv.CascadeClassifier
	plateCC *gocv.CascadeClassifier
	ocr     *gosseract.Client
	dd      *deduper
	events  map[string]int
	gray    gocv.Mat
	small   gocv.Mat // scratch: the frame scaled for face detection
	motion  motionGate
}

func (p *Pipeline) newAnalyser(src Source) (*analyser, error) {
	a := &analyser{p: p, src: src, region: p.opts.region(src.ID), dd: newDeduper(p.opts.Cooldown),
		events: map[string]int{}, face: gocv.NewCascadeClassifier(), gray: gocv.NewMat(),
		small: gocv.NewMat(), motion: newMotionGate()}
	if err := loadCascade(&a.face, p.opts.FaceCascade, "face"); err != nil {
		a.close()
		return nil, err
	}
	if p.opts.PlateCascade != NoCascade {
		cc := gocv.NewCascadeClassifier()
		a.plateCC = &cc
		if err := loadCascade(a.plateCC, p.opts.PlateCascade, "plate"); err != nil {
			a.close()
			return nil, err
		}
	}
	ocr, err := newOCR()
	if err != nil {
		a.close()
		return nil, err
	}
	a.ocr = ocr
	return a, nil
}

func (a *analyser) close() {
	a.face.Close()
	if a.plateCC != nil {
		a.plateCC.Close()
	}
	if a.ocr != nil {
		a.ocr.Close()
	}
	a.gray.Close()
	a.small.Close()
	a.motion.close()
}

// analyse runs face and plate analysis on one frame and offers every
// sighting to the de-duplicator.
func (a *analyser) analyse(frame gocv.Mat, tsMs int64) {
	if frame.Channels() == 1 {
		frame.CopyTo(&a.gray)
	} else {
		gocv.CvtColor(frame, &a.gray, gocv.ColorBGRToGray)
	}
	if !a.motion.due(a.gray, tsMs, motionPad(a.gray.Cols())) {
		a.p.m.dropped.WithLabelValues(a.src.ID, dropStatic).Inc()
		return
	}
	a.p.m.frames.WithLabelValues(a.src.ID).Inc()
	faces := a.faces(a.gray)
	plates := a.plates(a.gray)
	a.motion.analysed(len(faces) + len(plates))
	for _, f := range faces {
		f := f
		a.dd.offer("face\x00"+f.name, tsMs, f.sim, func() ingest.Event {
			snap, region := a.snapshot(frame, f.box)
			ev := ingest.Event{
				Type: vocab.FaceMatch, TsMs: tsMs, Source: a.src.ID,
				Face: &ingest.Face{PersonName: f.name, Similarity: round4(f.sim), BBox: bbox(f.box),
					EmbeddingDistance: f.dist},
				Snapshot: snap,
			}
			if snap != nil {
				// Where the snapshot lies in the frame, so that POST
				// /people/{name}/faces {"from_event"} can cut the bbox
				// out of it.
				b := bbox(region)
				ev.Extra = map[string]json.RawMessage{"snapshot_bbox": fmt.Appendf(nil, "[%g,%g,%g,%g]", b[0], b[1], b[2], b[3])}
			}
			return ev
		})
	}
	for _, pl := range plates {
		pl := pl
		a.dd.offer("plate\x00"+watchlist.Key(pl.text), tsMs, pl.conf, func() ingest.Event {
			b := bbox(pl.box)
			ev := ingest.Event{
				Type: vocab.PlateRead, TsMs: tsMs, Source: a.src.ID,
				Plate: &ingest.Plate{PlateText: pl.text, Confidence: round4(pl.conf), Region: a.region, BBox: &b},
			}
			ev.Snapshot, _ = a.snapshot(frame, pl.box)
			if a.p.opts.Lists != nil {
				ev.Plate.ListMatch = a.p.opts.Lists.Match(pl.text)
				ev.Plate.ListMatchSet = true
			}
			return ev
		})
	}
}

func (a *analyser) faces(gray gocv.Mat) []faceHit {
	t := time.Now()
	boxes := detectFacesIn(&a.face, gray, faceMinSize, &a.small, a.motion.regions)
	a.p.m.observe(stageFaceDetect, t)
	if len(boxes) == 0 {
		return nil
	}
	t = time.Now()
	g := a.p.gallery.Load()
	hits := make([]faceHit, 0, len(boxes))
	for _, b := range boxes {
		d, err := faceDescriptor(gray, b)
		if err != nil {
			continue
		}
		name, sim, dist := recognise(g, d, a.p.opts.Threshold)
		hits = append(hits, faceHit{box: b, name: name, sim: sim, dist: dist})
	}
	a.p.m.observe(stageRecognise, t)
	return hits
}

func (a *analyser) plates(gray gocv.Mat) []plateHit {
	t := time.Now()
	cands := plateCandidates(gray, a.plateCC)
	var lines []ocrLine
	var boxes []image.Rectangle
	for _, c := range cands {
		if m, ok := ocrPrep(gray, c); ok {
			lines = append(lines, m)
			boxes = append(boxes, c.box)
		}
	}
	a.p.m.observe(stagePlate, t)
	if len(lines) == 0 {
		return nil
	}
	t = time.Now()
	defer a.p.m.observe(stageOCR, t)
	best := map[string]plateHit{}
	for i, l := range lines {
		text, conf, err := readLine(a.ocr, l)
		l.img.Close()
		if err != nil {
			a.p.m.errors.WithLabelValues(a.src.ID, errOCR).Inc()
			continue
		}
		if len(text) < minPlateChars || len(text) > maxPlateChars || len(text) > vocab.MaxPlateTextLen || conf < minPlateConfidence {
			continue
		}
		k := watchlist.Key(text)
		if old, ok := best[k]; !ok || conf > old.conf {
			best[k] = plateHit{box: boxes[i], text: text, conf: conf}
		}
	}
	out := make([]plateHit, 0, len(best))
	for _, h := range best {
		out = append(out, h)
	}
	return out
}

// snapshot encodes a padded crop of box as JPEG and returns it with the
// frame region it shows; nil when encoding fails (counted) — an event
// without a picture beats no event.
func (a *analyser) snapshot(frame gocv.Mat, box image.Rectangle) ([]byte, image.Rectangle) {
	px, py := int(float64(box.Dx())*snapshotPad), int(float64(box.Dy())*snapshotPad)
	r := image.Rect(box.Min.X-px, box.Min.Y-py, box.Max.X+px, box.Max.Y+py).
		Intersect(image.Rect(0, 0, frame.Cols(), frame.Rows()))
	if r.Empty() {
		return nil, r
	}
	crop := frame.Region(r)
	defer crop.Close()
	img := crop
	small := gocv.NewMat()
	defer small.Close()
	// A crop is at most 640 px on its long side: enough to recognise a
	// face or read a plate, and always far below MaxSnapshotBytes.
	if m := max(r.Dx(), r.Dy()); m > 640 {
		s := 640 / float64(m)
		gocv.Resize(crop, &small, image.Point{}, s, s, gocv.InterpolationArea)
		img = small
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, snapshotQuality})
	if err != nil {
		a.p.m.errors.WithLabelValues(a.src.ID, errSnapshot).Inc()
		return nil, r
	}
	defer buf.Close()
	b := buf.GetBytes()
	if len(b) > vocab.MaxSnapshotBytes {
		a.p.m.errors.WithLabelValues(a.src.ID, errSnapshot).Inc()
		return nil, r
	}
	return append([]byte(nil), b...), r
}

// emit appends evs; the error is counted and returned.
func (a *analyser) emit(ctx context.Context, evs []ingest.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		// Shutdown: the last sightings still go in, within a bound.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
		defer cancel()
	}
	if _, err := a.p.sink.Append(ctx, evs); err != nil {
		a.p.m.errors.WithLabelValues(a.src.ID, errAppend).Inc()
		return fmt.Errorf("vision: append %d events from %s: %w", len(evs), a.src.ID, err)
	}
	for _, e := range evs {
		a.events[e.Type]++
		a.p.m.events.WithLabelValues(a.src.ID, e.Type).Inc()
	}
	return nil
}

func bbox(r image.Rectangle) ingest.BBox {
	return ingest.BBox{float64(r.Min.X), float64(r.Min.Y), float64(r.Max.X), float64(r.Max.Y)}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
