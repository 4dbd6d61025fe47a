package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/projections"
)

// Options configure Open. Zero values are the server's defaults.
type Options struct {
	// URL names the store as eventlog.ParseURL reads it: "memory://",
	// "pebble:///abs/dir", "pebble://rel/dir" or a bare directory. With FS
	// it is the directory inside FS.
	URL string
	// FS overrides the file system (crash and fault tests:
	// vfs.NewCrashableMem, errorfs).
	FS eventlog.FS
	// CacheBytes sizes Pebble's block cache; 0 is
	// eventlog.DefaultCacheBytes.
	CacheBytes int64
	// SourceKeysOnly writes source index entries without their record copy
	// (projections.Options.SourceKeysOnly).
	SourceKeysOnly bool
	// ReadOnly opens the log of record alone, without writing, for the
	// offline tools (verify, export): there are no projections (Verify
	// checks the stored ones itself, and must report a damaged summary
	// rather than fail to open over it) and no ingest service. View and
	// Ingest return nil, and nothing is ever committed.
	ReadOnly bool
	// Now is the clock for created_at, the rolling counts, retention and
	// events without ts_ms; nil is time.Now.
	Now func() time.Time
	// Logger receives the log's and the projections' lifecycle messages;
	// nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics of the log, the projections and the
	// ingest service; nil registers nothing.
	Registerer prometheus.Registerer
	// Cluster, when set, selects cluster mode: the log of record is a
	// JetStream stream and the store at URL is this node's view of it
	// (package internal/cluster). Its Log, View, Now, Logger and
	// Registerer are filled in by Open. Not with ReadOnly.
	Cluster *cluster.Options
}

// Core is an open log of record with its projections, its append path and
// its commit bus. Its methods are safe for concurrent use.
type Core struct {
	log    *eventlog.Log
	view   *projections.View
	ingest *ingest.Service
	// node is cluster mode's publisher and follower; nil on one node.
	node *cluster.Node
	// scrub scrubs after erasures applied from the stream (cluster mode).
	scrub *scrubber

	// subMu serialises Subscribe and unsubscribe; subs is the current
	// subscriber list, replaced (never modified) under subMu and read
	// with one atomic load per committed batch.
	subMu sync.Mutex
	subs  atomic.Pointer[[]*subscriber]
}

// subscriber is a pointer so that unsubscribe finds its own entry even
// when the same function is subscribed twice.
type subscriber struct{ fn func(eventlog.Batch) }

// Open opens the log of record at o.URL and builds the core over it, in
// this order: the projections (projections.New); the log
// (eventlog.Open, which replays the WAL) with the projections as its
// Indexer and the commit bus as its OnCommit; the projections' in-memory
// state from the store (View.Attach); the ingest service over the log.
// Nothing can append before Open returns, so no batch is committed before
// the projections are complete. With o.ReadOnly only the log is opened.
func Open(o Options) (*Core, error) {
	c := &Core{}
	lo := eventlog.Options{
		URL: o.URL, FS: o.FS, CacheBytes: o.CacheBytes, ReadOnly: o.ReadOnly,
		Now: o.Now, Logger: o.Logger, Registerer: o.Registerer,
	}
	if !o.ReadOnly {
		c.view = projections.New(projections.Options{
			Logger: o.Logger, Registerer: o.Registerer, Now: o.Now, SourceKeysOnly: o.SourceKeysOnly,
		})
		lo.Indexer = c.view
		lo.OnCommit = c.committed
	}
	l, err := eventlog.Open(lo)
	if err != nil {
		return nil, err
	}
	c.log = l
	if o.ReadOnly {
		return c, nil
	}
	if err := c.view.Attach(l); err != nil {
		l.Close()
		return nil, err
	}
	var appender ingest.Appender = idempotency.NewAppender(l, o.Now)
	if o.Cluster == nil {
		if stream, ok, err := cluster.ViewOf(l); err != nil || ok {
			l.Close()
			if err == nil {
				err = fmt.Errorf("core: this store is a cluster node's view of stream %s: start it in cluster mode (SECUREVISION__CLUSTER__NATS_URL), or use another store for a single node", stream)
			}
			return nil, err
		}
	} else {
		co := *o.Cluster
		co.Log, co.View, co.Now, co.Logger, co.Registerer = l, c.view, o.Now, o.Logger, o.Registerer
		c.node, err = cluster.Open(context.Background(), co)
		if err != nil {
			l.Close()
			return nil, err
		}
		appender = c.node
		c.scrub = startScrubber(c, o.Logger)
	}
	c.ingest, err = ingest.New(ingest.Options{Log: appender, Now: o.Now, Registerer: o.Registerer})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// committed is the log's OnCommit hook, the commit bus: it runs on the
// log's commit goroutine once per durable batch, in log order. The
// projections see the batch first, then the subscribers in the order they
// subscribed. Per batch it costs one atomic load: no lock, no allocation.
func (c *Core) committed(b eventlog.Batch) {
	c.view.Committed(b)
	if p := c.subs.Load(); p != nil {
		for _, s := range *p {
			s.fn(b)
		}
	}
}

// Subscribe adds fn to the commit bus: fn receives every batch committed
// from now on, in log order, after the projections have seen it and after
// the subscribers that subscribed earlier. fn runs on the log's commit
// goroutine, which acknowledges appends only after it returns: fn must not
// block or do I/O (wsfanout.Hub.Publish only queues a pointer per client).
// It must not modify the batch; it may keep its entries (the log never
// reuses their memory).
//
// Batches committed before Subscribe are not delivered; they are in the
// log (wsfanout catches its clients up from there). The returned function
// removes fn; it is idempotent. A batch already being delivered when it
// runs may still reach fn.
func (c *Core) Subscribe(fn func(eventlog.Batch)) (unsubscribe func()) {
	s := &subscriber{fn: fn}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	var cur []*subscriber
	if p := c.subs.Load(); p != nil {
		cur = *p
	}
	next := make([]*subscriber, len(cur), len(cur)+1)
	copy(next, cur)
	next = append(next, s)
	c.subs.Store(&next)
	return func() { c.unsubscribe(s) }
}

func (c *Core) unsubscribe(s *subscriber) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	p := c.subs.Load()
	if p == nil {
		return
	}
	next := make([]*subscriber, 0, len(*p))
	for _, x := range *p {
		if x != s {
			next = append(next, x)
		}
	}
	if len(next) != len(*p) {
		c.subs.Store(&next)
	}
}

// Log is the log of record. Code that needs only its contract should take
// an eventlog.RecordLog (or eventlog.Store); *eventlog.Log adds what is
// Pebble's own: Checkpoint and backups, Err, Close.
func (c *Core) Log() *eventlog.Log { return c.log }

// View is the projections; nil when opened ReadOnly.
func (c *Core) View() *projections.View { return c.view }

// Ingest is the one append path; nil when opened ReadOnly.
func (c *Core) Ingest() *ingest.Service { return c.ingest }

// Close shuts the core down: the log stops taking appends (later ones
// fail with eventlog.ErrClosed), its writer commits what is already
// queued, and those last batches reach the projections and the
// subscribers as usual; then Pebble is closed. Stop the producers first
// (drain HTTP requests, stop the vision pipeline and retention), so that
// their appends commit rather than fail; a subscriber that shut down
// before Close must ignore the last batches or unsubscribe first. The
// projections hold no resources of their own. Close is idempotent and
// returns the first call's error.
func (c *Core) Close() error {
	var err error
	c.scrub.stop()
	if c.node != nil {
		err = c.node.Close()
	}
	return errors.Join(err, c.log.Close())
}

// Cluster is cluster mode's node (its status for /health, its
// cluster-wide cleanup and retention loop); nil on one node.
func (c *Core) Cluster() *cluster.Node { return c.node }
