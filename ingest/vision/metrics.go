package vision

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pipeline stages timed by securevision_vision_stage_seconds.
const (
	stageDecode     = "decode"
	stageFaceDetect = "face_detect"
	stageRecognise  = "recognise"
	stagePlate      = "plate_detect"
	stageOCR        = "ocr"
)

// Reasons of the dropped-frame and error counters.
const (
	dropEmpty   = "empty_frame" // decoder returned an empty frame
	dropOverrun = "overrun"     // live: a newer frame replaced one not yet analysed
	dropStatic  = "static"      // nothing moved since the last analysed frame (see motionGate)

	errOpen     = "open"     // source could not be opened
	errRead     = "read"     // stream/device stopped delivering frames
	errAppend   = "append"   // sink refused a batch
	errGallery  = "gallery"  // unreadable gallery image
	errSnapshot = "snapshot" // JPEG encode failed
	errOCR      = "ocr"      // tesseract failed
)

type metrics struct {
	frames  *prometheus.CounterVec
	dropped *prometheus.CounterVec
	errors  *prometheus.CounterVec
	events  *prometheus.CounterVec
	stage   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_vision_frames_total",
			Help: "Frames analysed (after FPS sampling), per source.",
		}, []string{"source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_vision_frames_dropped_total",
			Help: "Frames that were due for analysis but not analysed, per source and reason.",
		}, []string{"source", "reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_vision_errors_total",
			Help: "Pipeline errors per source and reason (open, read, append, gallery, snapshot, ocr).",
		}, []string{"source", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_vision_events_total",
			Help: "Events appended by the pipeline after de-duplication, per source and type.",
		}, []string{"source", "type"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "securevision_vision_stage_seconds",
			Help: "Time per frame spent in each pipeline stage.",
			// 0.5 ms … ~4 s: OCR of a plate is tens of ms, Haar on a
			// 1080p frame hundreds.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage"}),
	}
	if reg != nil {
		m.frames = register(reg, m.frames)
		m.dropped = register(reg, m.dropped)
		m.errors = register(reg, m.errors)
		m.events = register(reg, m.events)
		m.stage = register(reg, m.stage)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name (a second pipeline or Detect in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		// Registration conflicts are programming errors; metrics still
		// work, they are just not exported.
	}
	return c
}

// observe records d for stage.
func (m *metrics) observe(stage string, since time.Time) {
	m.stage.WithLabelValues(stage).Observe(time.Since(since).Seconds())
}
