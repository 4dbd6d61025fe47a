// Package storetest opens real stores (Pebble on disk or on a given FS)
// with projections and the ingest path wired as the server wires them, for
// tests of every package above eventlog.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/projections"
)

// Store is an open log with its view and ingest service.
type Store struct {
	Log    *eventlog.Log
	View   *projections.View
	Ingest *ingest.Service
	Reg    *prometheus.Registry

	mu   sync.Mutex
	subs []func(eventlog.Batch)
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
	t.Cleanup(func() { s.Log.Close() })
	return s
}

// OpenErr opens a store at dir.
func OpenErr(dir string, o Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("storetest: no dir")
	}
	s := &Store{Reg: prometheus.NewRegistry()}
	s.View = projections.New(projections.Options{Now: o.Now, Registerer: s.Reg, SourceKeysOnly: o.SourceKeysOnly})
	l, err := eventlog.Open(eventlog.Options{
		URL: dir, FS: o.FS, Indexer: s.View, Now: o.Now, Registerer: s.Reg,
		OnCommit: func(b eventlog.Batch) {
			s.View.Committed(b)
			s.mu.Lock()
			subs := s.subs
			s.mu.Unlock()
			for _, fn := range subs {
				fn(b)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := s.View.Attach(l); err != nil {
		l.Close()
		return nil, err
	}
	s.Log = l
	s.Ingest, err = ingest.New(ingest.Options{Log: l, Now: o.Now, Registerer: s.Reg})
	if err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// Subscribe adds a commit subscriber (e.g. a wsfanout hub's Publish).
func (s *Store) Subscribe(fn func(eventlog.Batch)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(append([]func(eventlog.Batch){}, s.subs...), fn)
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
