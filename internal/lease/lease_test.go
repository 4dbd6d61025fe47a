package lease_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securevision/events/internal/lease"
	"github.com/securevision/events/internal/natstest"
)

// waitFor bounds the waits for the cluster (three servers and the race
// detector on a small machine), never unbounded.
const waitFor = 60 * time.Second

// ttl is short so that a take-over after a death comes in seconds.
const ttl = 3 * time.Second

// member is one node: its own NATS connection and a Lease whose work
// counts how many holders are working at once.
type member struct {
	nc     *nats.Conn
	l      *lease.Lease
	cancel context.CancelFunc
	done   chan struct{}
	terms  atomic.Int32
}

func connect(t *testing.T, c *natstest.Cluster) (*nats.Conn, lease.Buckets) {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for {
		b, err := lease.Open(ctx, js, "TEST", 3, ttl)
		if err == nil {
			return nc, b
		}
		if ctx.Err() != nil {
			t.Fatalf("open buckets: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func start(t *testing.T, c *natstest.Cluster, name string, working *atomic.Int32, overlap *atomic.Bool) *member {
	t.Helper()
	nc, b := connect(t, c)
	l, err := lease.New(lease.Options{KV: b.Lease, Name: name, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	m := &member{nc: nc, l: l, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		l.Run(ctx, func(ctx context.Context) {
			m.terms.Add(1)
			if working.Add(1) > 1 {
				overlap.Store(true)
			}
			<-ctx.Done()
			working.Add(-1)
		})
	}()
	t.Cleanup(func() { cancel(); <-m.done })
	return m
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLeaseOneHolderAndTakeOver: of two nodes exactly one works; when
// the holder shuts down the other takes over at once, and when the new
// holder dies (its NATS connection cut, so it can neither renew nor
// release) the first, started again, takes over within the 30 s the API
// reference promises, never while the dead one still works.
func TestLeaseOneHolderAndTakeOver(t *testing.T) {
	c, err := natstest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	var working atomic.Int32
	var overlap atomic.Bool
	a := start(t, c, "a", &working, &overlap)
	b := start(t, c, "b", &working, &overlap)
	waitUntil(t, "a holder", waitFor, func() bool { return a.l.Held() || b.l.Held() })
	// Both keep trying for several TTLs: still exactly one holder.
	time.Sleep(2 * ttl) // observation window, not synchronisation
	if a.l.Held() == b.l.Held() {
		t.Fatalf("held by a: %v, by b: %v; want exactly one", a.l.Held(), b.l.Held())
	}
	holder, other := a, b
	if b.l.Held() {
		holder, other = b, a
	}
	if holder.terms.Load() != 1 || other.terms.Load() != 0 {
		t.Fatalf("terms: holder %d, other %d; want 1 and 0 (a renewal lost the lease)", holder.terms.Load(), other.terms.Load())
	}

	// A clean shutdown releases the key: the other takes over in about
	// one poll, not after the TTL.
	holder.cancel()
	<-holder.done
	took := waitUntil(t, "take-over after a shutdown", 30*time.Second, other.l.Held)
	t.Logf("take-over after a shutdown: %s", took)

	// A death: the holder's connection is cut; it stops working by
	// itself, and a new node takes the lease only after the key expired.
	third := start(t, c, "c", &working, &overlap)
	other.nc.Close()
	took = waitUntil(t, "take-over after a death", 30*time.Second, third.l.Held)
	t.Logf("take-over after a death: %s", took)
	waitUntil(t, "the dead holder stops", 30*time.Second, func() bool { return !other.l.Held() })
	if overlap.Load() {
		t.Fatal("two nodes worked at once")
	}
	_, buckets := connect(t, c)
	name, err := lease.Holder(context.Background(), buckets.Lease)
	if err != nil || name != "c" {
		t.Fatalf("holder %q, %v; want c", name, err)
	}
}
