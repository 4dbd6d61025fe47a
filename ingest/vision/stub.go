//go:build !gocv

package vision

import (
	"context"
	"io"

	"github.com/securevision/events/ingest"
)

// Available reports whether this binary was built with OpenCV (the gocv
// build tag). It is false in this build.
func Available() bool { return false }

// Pipeline is the camera pipeline; in a build without OpenCV it can only be
// empty.
type Pipeline struct{}

// New returns ErrNoOpenCV when sources are configured: a build without
// OpenCV cannot honour them and start-up must stop with a clear message.
// Without sources it returns a pipeline whose Run returns at once.
func New(opts Options, sink ingest.Sink) (*Pipeline, error) {
	if len(opts.Sources) > 0 {
		return nil, ErrNoOpenCV
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Pipeline{}, nil
}

// Run returns nil: there is nothing to run.
func (p *Pipeline) Run(ctx context.Context) error { return nil }

// Reload does nothing.
func (p *Pipeline) Reload() error { return nil }

// Detect returns ErrNoOpenCV.
func Detect(ctx context.Context, opts DetectOptions, sink ingest.Sink, progress io.Writer) (Summary, error) {
	return Summary{}, ErrNoOpenCV
}
