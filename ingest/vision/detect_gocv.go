//go:build gocv

package vision

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/vocab"
)

// progressEvery limits progress redraws: a terminal does not need more.
const progressEvery = 200 * time.Millisecond

// Detect analyses one video or image file (opts.Source) for the CLI,
// appending events to sink and redrawing a progress line on progress
// (nil: none). ts_ms of a frame is opts.Start (default now) plus the
// frame's position in the file.
func Detect(ctx context.Context, opts DetectOptions, sink ingest.Sink, progress io.Writer) (Summary, error) {
	if k := opts.Source.Kind(); k != "file" {
		return Summary{}, fmt.Errorf("vision: detect reads files; %q is a %s (use serve with SECUREVISION__INGEST__SOURCES for live sources)", opts.Source.URL, k)
	}
	o := opts.Options
	o.Sources = []Source{opts.Source}
	p, err := New(o, sink)
	if err != nil {
		return Summary{}, err
	}
	defer p.enrol.cc.Close()
	a, err := p.newAnalyser(opts.Source)
	if err != nil {
		return Summary{}, err
	}
	defer a.close()
	start := opts.Start
	if start.IsZero() {
		start = p.opts.now()
	}
	began := time.Now()
	var last time.Time
	draw := func(decoded, total, analysed int, final bool) {
		if progress == nil || (!final && time.Since(last) < progressEvery) {
			return
		}
		last = time.Now()
		el := time.Since(began).Seconds()
		fps := 0.0
		if el > 0 {
			fps = float64(analysed) / el
		}
		n := a.events[vocab.FaceMatch] + a.events[vocab.PlateRead] + a.dd.pending()
		of := "?"
		pct := ""
		if total > 0 {
			of = fmt.Sprint(total)
			pct = fmt.Sprintf(" (%3.0f%%)", 100*float64(min(decoded, total))/float64(total))
		}
		fmt.Fprintf(progress, "\r%s: frame %d/%s%s  %.1f analysed fps  events %d   ", opts.Source.ID, decoded, of, pct, fps, n)
	}
	st, err := a.runFile(ctx, start, func(d, t, an int) { draw(d, t, an, false) })
	if progress != nil && st.Decoded > 0 {
		draw(st.Decoded, st.Decoded, st.Frames, true)
		fmt.Fprintln(progress)
	}
	return st, err
}
