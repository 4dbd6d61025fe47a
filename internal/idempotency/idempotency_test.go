package idempotency_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/storetest"
)

func rec() []eventlog.Record {
	return []eventlog.Record{{Type: 1, TsMs: 1, Source: "cam", Head: []byte(`"type":"face_match","ts_ms":1,"frame_source_id":"cam"`), Tail: []byte(`"payload":{}`)}}
}

// Records answer until they expire; Sweep deletes the expired ones, only
// those, and a key reused after expiry appends again.
func TestAppenderExpiryAndSweep(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	s := storetest.Open(t, storetest.Options{Now: now})
	a := idempotency.NewAppender(s.Log, now)
	ctx := context.Background()
	req := func(key string, h byte) (context.Context, *bool) {
		r := idempotency.Request{Key: key, Replayed: new(bool)}
		r.Hash[0] = h
		return idempotency.WithRequest(ctx, r), r.Replayed
	}
	c1, rp := req("a", 1)
	f, l, err := a.Append(c1, rec())
	if err != nil || f != 1 || l != 1 || *rp {
		t.Fatalf("first: %d %d %v replayed %v", f, l, err, *rp)
	}
	c1, rp = req("a", 1)
	if f, l, err := a.Append(c1, rec()); err != nil || f != 1 || l != 1 || !*rp {
		t.Fatalf("repeat: %d %d %v replayed %v", f, l, err, *rp)
	}
	c2, _ := req("a", 2)
	if _, _, err := a.Append(c2, rec()); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("other body: %v", err)
	}
	if _, _, err := a.Append(ctx, rec()); err != nil { // no key: plain append
		t.Fatal(err)
	}
	cb, _ := req("b", 1)
	if _, _, err := a.Append(cb, rec()); err != nil {
		t.Fatal(err)
	}
	clock.Add(idempotency.Window.Milliseconds() - 1)
	if _, ok, _ := idempotency.Lookup(s.Log, "a", clock.Load()); !ok {
		t.Fatal("record gone before its window ended")
	}
	clock.Add(1)
	if _, ok, _ := idempotency.Lookup(s.Log, "a", clock.Load()); ok {
		t.Fatal("record answers after its window")
	}
	// Reused after expiry: a new request.
	c2, rp = req("a", 2)
	if f, _, err := a.Append(c2, rec()); err != nil || f != 4 || *rp {
		t.Fatalf("after expiry: %d %v %v", f, err, *rp)
	}
	n, err := idempotency.Sweep(ctx, s.Log, clock.Load()+1)
	if err != nil || n != 2 {
		t.Fatalf("sweep deleted %d, %v; want 2 (a's first entry and b)", n, err)
	}
	if _, ok, _ := idempotency.Lookup(s.Log, "a", clock.Load()); !ok {
		t.Fatal("sweep deleted the reused key's new record")
	}
	if _, ok, _ := idempotency.Lookup(s.Log, "b", 0); ok {
		t.Fatal("b survived the sweep")
	}
}

func TestCheckKey(t *testing.T) {
	for k, ok := range map[string]bool{"": false, "a": true, "550e8400-e29b-41d4-a716-446655440000": true, "a b": true, "a\n": false, "\x7f": false, string(make([]byte, 256)): false} {
		if got := idempotency.CheckKey(k) == nil; got != ok {
			t.Errorf("CheckKey(%q) ok=%v, want %v", k, got, ok)
		}
	}
}

// A second request with a key waits for the first; it gives up with its
// context.
func TestLocks(t *testing.T) {
	var l idempotency.Locks
	unlock, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("second lock: %v", err)
	}
	other, err := l.Lock(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	other()
	done := make(chan struct{})
	go func() {
		u, err := l.Lock(context.Background(), "k")
		if err == nil {
			u()
		}
		close(done)
	}()
	unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken")
	}
}
