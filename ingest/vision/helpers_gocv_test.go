//go:build gocv

package vision

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/ingest"
)

const sampleDir = "/usr/share/doc/opencv-doc/examples/data"

func sample(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(sampleDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("sample %s not installed (apt-get install opencv-doc): %v", name, err)
	}
	return p
}

// memSink is an in-memory ingest.Sink.
type memSink struct {
	mu   sync.Mutex
	evs  []ingest.Event
	err  error
	next uint64
}

func (s *memSink) Append(ctx context.Context, evs []ingest.Event) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return ingest.Result{}, s.err
	}
	s.evs = append(s.evs, evs...)
	first := s.next + 1
	s.next += uint64(len(evs))
	return ingest.Result{Count: len(evs), FirstID: first, LastID: s.next}, nil
}

func (s *memSink) events() []ingest.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Event(nil), s.evs...)
}

func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestPipeline builds a pipeline with one source and its analyser.
func newTestPipeline(t testing.TB, opts Options, sink ingest.Sink) (*Pipeline, *analyser) {
	t.Helper()
	if len(opts.Sources) == 0 {
		opts.Sources = []Source{{ID: "test_cam", URL: "/dev/null"}}
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if sink == nil {
		sink = &memSink{}
	}
	p, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.enrol.cc.Close() })
	a, err := p.newAnalyser(opts.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return p, a
}

var _ = time.Now
