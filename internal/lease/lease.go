package lease

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultTTL is how long a lease outlives its holder's last renewal: a
// dead holder's integrations are taken over within about this long
// (well inside the 30 s the API reference promises), and a JetStream
// leader election (a few seconds) does not make a live holder lose it.
const DefaultTTL = 10 * time.Second

// StopWithin bounds how long work may take to stop once its context
// ends (a holder that lost the lease gives up at TTL/2 and the key
// expires at TTL): the MQTT publisher's wait for its PUBACKs in flight.
const StopWithin = DefaultTTL / 4

// Key is the lease's key in the lease bucket.
const Key = "integrations"

// opTimeout bounds one key-value request.
const opTimeout = 3 * time.Second

// Buckets are the two key-value buckets of a stream's integrations.
type Buckets struct {
	Lease jetstream.KeyValue // the lease key, expiring
	State jetstream.KeyValue // cursors and subscriptions, durable
}

// Open creates (or opens) the buckets of stream with the given replicas
// and lease TTL (0: DefaultTTL).
func Open(ctx context.Context, js jetstream.JetStream, stream string, replicas int, ttl time.Duration) (Buckets, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	var b Buckets
	var err error
	b.Lease, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: stream + "_lease", Description: "SecureVision: which node runs the integrations",
		History: 1, TTL: ttl, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return Buckets{}, fmt.Errorf("lease: bucket %s_lease: %w", stream, err)
	}
	b.State, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: stream + "_integrations", Description: "SecureVision: integrations' cursors and webhook subscriptions",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return Buckets{}, fmt.Errorf("lease: bucket %s_integrations: %w", stream, err)
	}
	return b, nil
}

// Options configure a Lease.
type Options struct {
	KV     jetstream.KeyValue // the lease bucket (Buckets.Lease); required
	Name   string             // this node's name, the key's value; required
	TTL    time.Duration      // the bucket's MaxAge; 0: DefaultTTL
	Logger *slog.Logger       // nil discards
}

// Lease runs work on this node while it holds the lease (see the package
// doc). Held and Holder are safe for concurrent use.
type Lease struct {
	o    Options
	held atomic.Bool
}

// New checks o.
func New(o Options) (*Lease, error) {
	if o.KV == nil || o.Name == "" {
		return nil, errors.New("lease: KV and Name are required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Lease{o: o}, nil
}

// Held reports whether this node holds the lease now.
func (l *Lease) Held() bool { return l.held.Load() }

// Run takes the lease whenever it is free and, while it holds it, runs
// work with a context that ends when the lease is lost (or ctx ends);
// it waits for work to return before it lets the lease go. Run returns
// when ctx ends, after releasing the lease.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context)) {
	poll := l.o.TTL / 10
	for ctx.Err() == nil {
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		rev, err := l.o.KV.Create(rctx, Key, []byte(l.o.Name))
		cancel()
		if err == nil {
			l.hold(ctx, rev, sent, work)
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// hold runs work while renewing the lease taken at revision rev (the
// Create sent at sent); it returns once work has returned.
func (l *Lease) hold(ctx context.Context, rev uint64, sent time.Time, work func(ctx context.Context)) {
	l.held.Store(true)
	l.o.Logger.Info("integrations lease taken: this node delivers", "node", l.o.Name)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	renew := time.NewTicker(l.o.TTL / 5)
	defer renew.Stop()
	why := "shutting down"
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-done:
			why = "work ended"
			break loop
		case <-renew.C:
		}
		at := time.Now()
		rctx, cancel := context.WithTimeout(ctx, min(opTimeout, l.o.TTL/5))
		nrev, err := l.o.KV.Update(rctx, Key, []byte(l.o.Name), rev)
		cancel()
		switch {
		case err == nil:
			rev, sent = nrev, at
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			why = "taken by another node"
			break loop
		case time.Since(sent) >= l.o.TTL/2:
			why = "not renewed in time: " + err.Error()
			break loop
		}
	}
	stop()
	<-done
	l.held.Store(false)
	if ctx.Err() != nil {
		// Let the next holder start at once rather than after the TTL.
		rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_ = l.o.KV.Delete(rctx, Key, jetstream.LastRevision(rev))
		cancel()
	}
	l.o.Logger.Info("integrations lease given up: this node stopped delivering", "node", l.o.Name, "reason", why)
}

// Holder returns the name of the node that holds the lease, "" when
// none does.
func Holder(ctx context.Context, kv jetstream.KeyValue) (string, error) {
	e, err := kv.Get(ctx, Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// Cursor is a u64 cursor kept under one key of the state bucket (the
// MQTT publisher's). Load and Store are safe for concurrent use.
type Cursor struct {
	KV  jetstream.KeyValue
	Key string
}

// Load returns the cursor; false when it was never stored.
func (c Cursor) Load(ctx context.Context) (uint64, bool, error) {
	e, err := c.KV.Get(ctx, c.Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lease: read %s: %w", c.Key, err)
	}
	if len(e.Value()) != 8 {
		return 0, false, fmt.Errorf("lease: %s holds %d bytes, not 8", c.Key, len(e.Value()))
	}
	return binary.BigEndian.Uint64(e.Value()), true, nil
}

// Store writes the cursor.
func (c Cursor) Store(ctx context.Context, v uint64) error {
	if _, err := c.KV.Put(ctx, c.Key, binary.BigEndian.AppendUint64(nil, v)); err != nil {
		return fmt.Errorf("lease: write %s: %w", c.Key, err)
	}
	return nil
}
