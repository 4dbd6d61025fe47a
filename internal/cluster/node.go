package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/idempotency"
)

// Keys of the 'R' family (eventlog/doc.go).
var (
	keyApplied = []byte("Rapplied") // u64 stream sequence applied through
	keyStream  = []byte("Rstream")  // stream name 0x00 created (RFC 3339 nano)
)

// statusEvery is how often the node refreshes the stream's last sequence
// for /health when nothing else told it.
const statusEvery = 2 * time.Second

// maxInflightBatches bounds the atomic batches this node has in flight:
// the server refuses more than 50 per stream at once (from all nodes),
// and a refused batch is retried.
const maxInflightBatches = 16

// Node is one API node in cluster mode: the publisher of its requests and
// the follower that applies the stream to its local store. Its methods
// are safe for concurrent use.
type Node struct {
	o      Options
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	prefix string // securevision.<stream>
	m      *metrics

	inflight chan struct{} // atomic batch slots
	locks    idempotency.Locks
	sweep    idempotency.Sweeper

	lastSeq    atomic.Uint64 // the stream's last sequence, as last seen
	applied    atomic.Uint64 // applied through, persisted in 'R'
	maxCreated atomic.Int64  // newest created_at published or applied

	// mu guards the applied notification channel and the retention
	// results that the follower hands to waiting cleanups.
	mu struct {
		sync.Mutex
		advanced chan struct{} // closed and replaced when applied moves
		results  map[uint64]cleanupResult
	}

	stop     chan struct{}
	done     sync.WaitGroup
	closeErr error
	once     sync.Once
}

// cleanupResult is what the follower did at one of this node's markers:
// how many events it deleted, the low-water id after, and the late ids
// it deleted beyond it (what the stream trim deletes).
type cleanupResult struct {
	deleted int
	low     uint64
	late    []uint64
}

// Open connects to NATS, makes sure the stream exists and suits cluster
// mode, checks that the local store is a view of that stream and starts
// the follower. Every error is one line that says what to fix.
func Open(ctx context.Context, o Options) (*Node, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	n := &Node{o: o, prefix: "securevision." + o.Stream, inflight: make(chan struct{}, maxInflightBatches), stop: make(chan struct{})}
	n.mu.advanced = make(chan struct{})
	n.mu.results = map[uint64]cleanupResult{}
	wctx, cancel := context.WithTimeout(ctx, o.ConnectWait)
	defer cancel()
	if err := n.connect(wctx); err != nil {
		return nil, err
	}
	if err := n.ensureStream(wctx); err != nil {
		n.nc.Close()
		return nil, err
	}
	if err := n.checkStore(ctx); err != nil {
		n.nc.Close()
		return nil, err
	}
	n.m = newMetrics(o.Registerer, n)
	n.done.Add(2)
	go n.follow()
	go n.watchStatus()
	o.Logger.Info("cluster mode", "stream", o.Stream, "applied_id", n.applied.Load(), "last_id", n.lastSeq.Load(), "node", o.Name)
	return n, nil
}

// connect dials NATS, retrying until ctx ends: the servers may be
// starting alongside this node.
func (n *Node) connect(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name("securevision " + n.o.Name),
		nats.MaxReconnects(-1), // an outage ends; the follower resumes
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.o.Logger.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.o.Logger.Info("NATS reconnected", "server", c.ConnectedUrlRedacted())
		}),
	}
	if n.o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(n.o.CredsFile))
	}
	if n.o.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(n.o.TLSCAFile))
	}
	var last error
	for {
		nc, err := nats.Connect(n.o.URLs, opts...)
		if err == nil {
			n.nc = nc
			break
		}
		last = err
		if errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "credentials") {
			return fmt.Errorf("cluster: NATS at %s refused this node's credentials: %w", redactURLs(n.o.URLs), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no NATS server reachable at %s within %s: %w", redactURLs(n.o.URLs), n.o.ConnectWait, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if !serverAtLeast(n.nc.ConnectedServerVersion(), 2, 12) {
		v := n.nc.ConnectedServerVersion()
		n.nc.Close()
		return fmt.Errorf("cluster: NATS server %s is too old: cluster mode needs atomic batch publish, nats-server 2.12 or later", v)
	}
	js, err := jetstream.New(n.nc)
	if err != nil {
		n.nc.Close()
		return fmt.Errorf("cluster: JetStream: %w", err)
	}
	n.js = js
	return nil
}

// serverAtLeast reports whether version "x.y.z[-…]" is at least
// major.minor.
func serverAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// redactURLs drops user information from NATS URLs for messages.
func redactURLs(urls string) string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if i := strings.Index(u, "://"); i >= 0 && i < at {
				u = u[:i+3] + "REDACTED@" + u[at+1:]
			}
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// streamConfig is the stream as this node creates it.
func (n *Node) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               n.o.Stream,
		Description:        "SecureVision Events: the log of record (cluster mode)",
		Subjects:           []string{n.prefix + ".>"},
		Storage:            jetstream.FileStorage,
		Replicas:           n.o.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		Duplicates:         idempotency.Window,
		AllowAtomicPublish: true,
		AllowDirect:        true,
	}
}

// ensureStream creates the stream when missing and turns on what cluster
// mode needs on an existing one. A JetStream cluster that is still
// electing its leader answers "no responders" or times out: that is
// retried until ctx ends.
func (n *Node) ensureStream(ctx context.Context) error {
	var last error
	for {
		err := n.ensureStreamOnce(ctx)
		if err == nil {
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: stream %s not available within %s (is JetStream enabled, with a leader?): %w", n.o.Stream, n.o.ConnectWait, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// fatalError is an ensureStream error that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func (n *Node) ensureStreamOnce(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := n.js.Stream(rctx, n.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = n.js.CreateStream(rctx, n.streamConfig())
		if err == nil {
			n.o.Logger.Info("stream created", "stream", n.o.Stream, "replicas", n.o.Replicas)
		}
	}
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code != 503 && apiErr.Code != 408 && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return &fatalError{fmt.Errorf("cluster: stream %s: %w", n.o.Stream, err)}
		}
		return err
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowAtomicPublish || cfg.Duplicates < idempotency.Window || !subjectsCover(cfg.Subjects, n.prefix+".>") {
		cfg.AllowAtomicPublish = true
		cfg.Duplicates = max(cfg.Duplicates, idempotency.Window)
		if !subjectsCover(cfg.Subjects, n.prefix+".>") {
			cfg.Subjects = append(cfg.Subjects, n.prefix+".>")
		}
		if s, err = n.js.UpdateStream(rctx, cfg); err != nil {
			return &fatalError{fmt.Errorf("cluster: stream %s needs atomic publish and a duplicate window of %s; updating it failed: %w", n.o.Stream, idempotency.Window, err)}
		}
	}
	if !s.CachedInfo().Config.AllowAtomicPublish {
		// A server that does not know the setting drops it.
		return &fatalError{fmt.Errorf("cluster: the NATS servers of stream %s do not support atomic batch publish: cluster mode needs nats-server 2.12 or later on every server", n.o.Stream)}
	}
	n.stream = s
	n.noteLast(s.CachedInfo().State.LastSeq)
	return nil
}

func subjectsCover(subjects []string, want string) bool {
	for _, s := range subjects {
		if s == want {
			return true
		}
	}
	return false
}

// checkStore makes sure the local store is a view of this stream, and
// reads the applied position.
func (n *Node) checkStore(ctx context.Context) error {
	info := n.stream.CachedInfo()
	ident := n.o.Stream + "\x00" + info.Created.UTC().Format(time.RFC3339Nano)
	var stored []byte
	var applied uint64
	err := n.o.Log.Update(ctx, func(tx *eventlog.Tx) error {
		v, err := tx.Get(keyStream)
		if err != nil && !errors.Is(err, eventlog.ErrNotFound) {
			return err
		}
		stored = v
		if v, err := tx.Get(keyApplied); err == nil && len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		if stored == nil && tx.State().Last == 0 {
			return tx.Set(keyStream, []byte(ident))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: local store: %w", err)
	}
	switch {
	case stored == nil && n.o.Log.LastID() > 0:
		return fmt.Errorf("cluster: the local store holds %d events written in single-node mode; a cluster node's store is a view of stream %s and must start empty: point SECUREVISION__EVENTS__DB_URL at a new directory", n.o.Log.LastID(), n.o.Stream)
	case stored != nil && string(stored) != ident:
		name, created, _ := strings.Cut(string(stored), "\x00")
		return fmt.Errorf("cluster: the local store is a view of stream %s created %s, not of stream %s created %s: point SECUREVISION__EVENTS__DB_URL at a new directory", name, created, n.o.Stream, info.Created.UTC().Format(time.RFC3339Nano))
	}
	n.applied.Store(applied)
	n.noteLast(applied)
	if last := n.o.Log.State(); last.Last > 0 {
		if v, err := n.o.Log.Get(last.Last); err == nil {
			if _, _, _, js, err := eventlog.SplitValue(v); err == nil {
				n.maxCreated.Store(eventlog.CreatedMs(js))
			}
		}
	}
	return nil
}

// noteLast raises the stream's last sequence as this node knows it.
func (n *Node) noteLast(seq uint64) {
	for {
		cur := n.lastSeq.Load()
		if seq <= cur || n.lastSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// watchStatus polls the stream's state for /health.
func (n *Node) watchStatus() {
	defer n.done.Done()
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if !n.nc.IsConnected() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), statusEvery)
		info, err := n.stream.Info(ctx)
		cancel()
		if err == nil {
			n.noteLast(info.State.LastSeq)
		}
	}
}

// Status is /health's cluster member.
type Status struct {
	Stream    string `json:"stream"`
	LastID    uint64 `json:"last_id"`
	AppliedID uint64 `json:"applied_id"`
	Lag       uint64 `json:"lag"`
	Connected bool   `json:"connected"`
}

// Health returns the node's cluster status, from memory.
func (n *Node) Health() Status {
	applied, last := n.applied.Load(), n.lastSeq.Load()
	return Status{
		Stream: n.o.Stream, LastID: max(last, applied), AppliedID: applied,
		Lag: max(last, applied) - applied, Connected: n.nc.IsConnected(),
	}
}

// Applied is the stream position this node's views have applied.
func (n *Node) Applied() uint64 { return n.applied.Load() }

// Close stops the follower (after the batch it is applying) and closes
// the NATS connection. The local store stays open: package core closes
// it after. Close is idempotent.
func (n *Node) Close() error {
	n.once.Do(func() {
		close(n.stop)
		n.done.Wait()
		n.m.unregister()
		n.nc.Close()
		n.o.Logger.Info("cluster node closed", "applied_id", n.applied.Load())
	})
	return n.closeErr
}

// advance records that the follower applied through seq and wakes the
// waiters.
func (n *Node) advance(seq uint64) {
	n.applied.Store(seq)
	n.noteLast(seq)
	n.mu.Lock()
	close(n.mu.advanced)
	n.mu.advanced = make(chan struct{})
	n.mu.Unlock()
}

// waitApplied waits until the follower applied through seq, ctx ends or
// the node closes.
func (n *Node) waitApplied(ctx context.Context, seq uint64) error {
	for {
		n.mu.Lock()
		ch := n.mu.advanced
		n.mu.Unlock()
		if n.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return errClosed
		}
	}
}

var errClosed = errors.New("cluster: node closed")

// ViewOf reports the stream whose view the store l is, if it is one: a
// store a cluster node wrote must not take writes of its own in
// single-node mode (package core refuses that).
func ViewOf(l interface {
	NewIter(lower, upper []byte) (*eventlog.Iter, error)
}) (stream string, ok bool, err error) {
	it, err := l.NewIter(keyStream, append(append([]byte(nil), keyStream...), 0))
	if err != nil {
		return "", false, err
	}
	defer it.Close()
	if !it.First() {
		return "", false, it.Error()
	}
	name, _, _ := strings.Cut(string(it.Value()), "\x00")
	return name, true, nil
}

// JetStream is the node's JetStream context, for what shares the
// stream's servers (the integrations' lease and state, package lease).
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Stream is the name of the stream this node follows.
func (n *Node) Stream() string { return n.o.Stream }

// Replicas is the stream's replica count.
func (n *Node) Replicas() int { return n.stream.CachedInfo().Config.Replicas }

// Name is this node's name (Options.Name).
func (n *Node) Name() string { return n.o.Name }
