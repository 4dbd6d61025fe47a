package main

import "github.com/securevision/events/bench"

// runVision is the vision pipeline section (benchall -include vision), to
// be written by the ingest/vision owner. It needs a gocv build (OpenCV 4):
// when it is missing, set s.Skipped and say so. Suggested content: frames
// per second per source for face detection + recognition and plate OCR on
// the sample videos, end-to-end latency from frame to durable event, CPU
// per source; the command (go test -tags gocv -bench ... ./ingest/vision/)
// in Section.Commands, parsed with bench.RunGoBench / bench.Median.
func runVision(e *env, s *bench.Section) error {
	s.Skipped = "placeholder: the vision pipeline benchmark is not written yet (bench/cmd/benchall/vision.go)"
	return nil
}
