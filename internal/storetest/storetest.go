// Package storetest opens real stores for tests of every package above
// eventlog: a thin test wrapper over internal/core, which wires the log,
// the projections, the ingest path and the commit bus exactly as the
// server does (it is the server's wiring), plus helpers that make valid
// events. Besides internal/core it uses eventlog, projections and ingest
// for the types it hands out, and Pebble's vfs for in-memory or failing
// disks; only tests import it.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/projections"
)

// Store is an open core with its parts at hand and its own metrics
// registry.
type Store struct {
	Core   *core.Core
	Log    *eventlog.Log
	View   *projections.View
	Ingest *ingest.Service
	Reg    *prometheus.Registry
}

// Options for Open; zero values are fine.
type Options struct {
	Dir string // default t.TempDir()
	FS  vfs.FS // with FS, Dir is the directory inside it
	Now func() time.Time
	// SourceKeysOnly is projections.Options.SourceKeysOnly.
	SourceKeysOnly bool
}

// Open opens a store and closes it at test cleanup.
func Open(t testing.TB, o Options) *Store {
	t.Helper()
	switch {
	case o.Dir == "" && o.FS == nil:
		o.Dir = t.TempDir()
	case o.Dir == "":
		o.Dir = "db"
	}
	s, err := OpenErr(o.Dir, o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Core.Close() })
	return s
}

// OpenErr opens a store at dir (inside o.FS when set) with core.Open.
func OpenErr(dir string, o Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("storetest: no dir")
	}
	reg := prometheus.NewRegistry()
	c, err := core.Open(core.Options{URL: dir, FS: o.FS, Now: o.Now, Registerer: reg, SourceKeysOnly: o.SourceKeysOnly})
	if err != nil {
		return nil, err
	}
	return &Store{Core: c, Log: c.Log(), View: c.View(), Ingest: c.Ingest(), Reg: reg}, nil
}

// Subscribe adds a commit subscriber (e.g. a wsfanout hub's Publish); see
// core.Core.Subscribe.
func (s *Store) Subscribe(fn func(eventlog.Batch)) (unsubscribe func()) {
	return s.Core.Subscribe(fn)
}

// Face returns a valid face event.
func Face(src string, ts int64, name string) ingest.Event {
	return ingest.Event{Type: ingest.TypeFace, TsMs: ts, Source: src,
		Face: &ingest.Face{PersonName: name, Similarity: 0.9, BBox: ingest.BBox{1, 2, 3, 4}}}
}

// Plate returns a valid plate event.
func Plate(src string, ts int64, text string) ingest.Event {
	return ingest.Event{Type: ingest.TypePlate, TsMs: ts, Source: src,
		Plate: &ingest.Plate{PlateText: text, Confidence: 0.8, Region: "US-CA"}}
}

// Append appends evs or fails the test.
func (s *Store) Append(t testing.TB, evs ...ingest.Event) ingest.Result {
	t.Helper()
	res, err := s.Ingest.Append(context.Background(), evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}
