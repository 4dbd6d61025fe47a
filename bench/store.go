package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/core"
)

// BuildOption adjusts BuildStore.
type BuildOption func(*buildConfig)

type buildConfig struct {
	progress   io.Writer
	batch      int
	sources    int
	seed       uint64
	now        func() time.Time
	rate       int
	outOfOrder float64
	fresh      time.Duration
}

// WithProgress prints progress lines to w (nil: silent).
func WithProgress(w io.Writer) BuildOption { return func(c *buildConfig) { c.progress = w } }

// WithBatchSize sets the events per ingest.Service.Append call (default
// 8000: the real path's cost per event, not per call, dominates).
func WithBatchSize(n int) BuildOption { return func(c *buildConfig) { c.batch = n } }

// WithSources sets the number of camera sources (default 20).
func WithSources(n int) BuildOption { return func(c *buildConfig) { c.sources = n } }

// WithSeed sets the generator seed (default 1).
func WithSeed(s uint64) BuildOption { return func(c *buildConfig) { c.seed = s } }

// WithClock sets the clock the newest events are stamped near (default
// time.Now).
func WithClock(now func() time.Time) BuildOption { return func(c *buildConfig) { c.now = now } }

// WithRate sets how many events share one second of ts_ms (default 1000:
// n events span the last n/1000 seconds).
func WithRate(perSecond int) BuildOption { return func(c *buildConfig) { c.rate = perSecond } }

// WithOutOfOrder sets the fraction of events stamped up to two minutes
// before their neighbours (default 0.01: cameras with late uploads).
func WithOutOfOrder(f float64) BuildOption { return func(c *buildConfig) { c.outOfOrder = f } }

// WithFreshness sets how old the newest event of a reused store may be
// before BuildStore appends a fresh tail ending now (default 1 minute), so
// that "since 5 minutes ago" still finds recent events. The tail is ten
// minutes of events at the rate, at most a tenth of n.
func WithFreshness(d time.Duration) BuildOption { return func(c *buildConfig) { c.fresh = d } }

// BuildInfo describes the store BuildStore left behind.
type BuildInfo struct {
	Dir string
	// Events is the number of ids in the store (last - first + 1).
	Events uint64
	// FirstID and LastID bound the log.
	FirstID, LastID uint64
	// Reused is true when the store already held enough events.
	Reused bool
	// Appended is what this call appended (the whole store, the missing
	// part, or a fresh tail of a reused store) and Took how long it took.
	Appended int
	Took     time.Duration
	// NewestTs is the ts_ms of the last record.
	NewestTs int64
	Sources  []string
}

// Rate is the append rate of this call in events/s.
func (b BuildInfo) Rate() float64 {
	if b.Took <= 0 {
		return 0
	}
	return float64(b.Appended) / b.Took.Seconds()
}

// BuildStore makes dir hold at least n events, appended through the real
// path (ingest.Service.Append of a core.Open store: the server's wiring)
// in batches. An existing store with n or more events is
// reused; one with fewer gets the missing events. The newest events are
// stamped near now; if a reused store's newest event is older than the
// freshness bound, a fresh tail is appended (see WithFreshness). The store is closed
// on return.
func BuildStore(dir string, n int, opts ...BuildOption) (BuildInfo, error) {
	c := buildConfig{batch: 8000, sources: 20, seed: 1, now: time.Now, rate: 1000, outOfOrder: 0.01, fresh: time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.batch < 1 || c.batch > ingest.MaxItems || c.rate < 1 || c.sources < 1 || n < 0 {
		return BuildInfo{}, fmt.Errorf("bench: BuildStore: bad options (batch %d, rate %d, sources %d, n %d)", c.batch, c.rate, c.sources, n)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return BuildInfo{}, err
	}
	st, err := core.Open(core.Options{URL: dir})
	if err != nil {
		return BuildInfo{}, fmt.Errorf("bench: open store %s: %w", dir, err)
	}
	info := BuildInfo{Dir: dir, Sources: Sources(c.sources)}
	closeErr := func(err error) error { return errors.Join(err, st.Close()) }

	have := storeCount(st.Log().State())
	// Seed by size so that a resumed build does not repeat the events it
	// already appended.
	gen := NewGenerator(c.seed+have, info.Sources)
	need := 0
	var span time.Duration
	switch {
	case have < uint64(n):
		need = n - int(have)
		span = time.Duration(need) * time.Second / time.Duration(c.rate)
		if have > 0 {
			c.log("store %s holds %d events, appending the missing %d", dir, have, need)
		}
	default:
		info.Reused = true
		newest, err := newestTs(st.Log())
		if err != nil {
			return info, closeErr(err)
		}
		if age := c.now().Sub(time.UnixMilli(newest)); age > c.fresh {
			// Ten minutes of events, but at most a tenth of the store:
			// enough for "since 5 minutes ago" without reshaping it.
			need = min(600*c.rate, max(n/10, 1))
			span = time.Duration(need) * time.Second / time.Duration(c.rate)
			c.log("reusing %s (%d events); newest event is %s old: appending a fresh tail of %d events", dir, have, age.Round(time.Second), need)
		} else {
			c.log("reusing %s (%d events)", dir, have)
		}
	}
	if need > 0 {
		start := time.Now()
		if err := c.appendAll(st.Ingest(), gen, need, span); err != nil {
			return info, closeErr(err)
		}
		info.Appended, info.Took = need, time.Since(start)
		c.log("appended %d events in %s (%.0f events/s)", need, info.Took.Round(time.Millisecond), info.Rate())
	}
	s := st.Log().State()
	info.FirstID, info.LastID, info.Events = s.First, s.Last, storeCount(s)
	if info.NewestTs, err = newestTs(st.Log()); err != nil {
		return info, closeErr(err)
	}
	return info, closeErr(nil)
}

func storeCount(s eventlog.State) uint64 {
	if s.Last == 0 || s.Last < s.First {
		return 0
	}
	return s.Last - s.First + 1
}

func newestTs(l eventlog.RecordLog) (int64, error) {
	last := l.LastID()
	if last == 0 {
		return 0, nil
	}
	v, err := l.Get(last)
	if err != nil {
		return 0, fmt.Errorf("bench: read last record %d: %w", last, err)
	}
	_, ts, _, _, err := eventlog.SplitValue(v)
	return ts, err
}

func (c *buildConfig) log(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, "bench: "+format+"\n", args...)
	}
}

// appendAll appends need events spanning the span that ends now. One
// goroutine generates the next batch while the current one commits.
func (c *buildConfig) appendAll(svc *ingest.Service, gen *Generator, need int, span time.Duration) error {
	end := c.now().UnixMilli()
	startTs := end - span.Milliseconds()
	step := float64(span.Milliseconds()) / float64(max(need, 1))
	late := rand.New(rand.NewPCG(c.seed, 42))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan []ingest.Event, 2)
	go func() {
		defer close(batches)
		for i := 0; i < need; {
			m := min(c.batch, need-i)
			evs := make([]ingest.Event, m)
			for j := range evs {
				ts := startTs + int64(float64(i+j)*step)
				if late.Float64() < c.outOfOrder {
					ts -= 1 + late.Int64N(120_000)
				}
				evs[j] = gen.Event(max(ts, 1))
			}
			i += m
			select {
			case batches <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	done, lastReport := 0, time.Now()
	start := lastReport
	for evs := range batches {
		if _, err := svc.Append(ctx, evs); err != nil {
			return fmt.Errorf("bench: append after %d events: %w", done, err)
		}
		done += len(evs)
		if time.Since(lastReport) >= 5*time.Second || done == need {
			lastReport = time.Now()
			el := time.Since(start).Seconds()
			c.log("  %d/%d events (%.0f%%), %.0f events/s", done, need, 100*float64(done)/float64(need), float64(done)/el)
		}
	}
	return nil
}
