// Package idempotency makes POST /ingest safe to retry: a request sent
// again with the same Idempotency-Key header and the same body within
// Window appends nothing and gets the first answer; the same key with a
// different body is refused (ErrKeyReused, answered 422), as the IETF
// Idempotency-Key draft and Stripe do.
//
// # Data
//
// The answer to a keyed request is an idempotency record in the store's
// 'K' family (eventlog/doc.go), written by an eventlog.AppendHook in the
// very batch that appends the request's events: a crash keeps both or
// neither, so a retry after an unacknowledged request finds the record
// exactly when the events are stored.
//
//	'K' 'k' key                    -> hash[32] first:u64 last:u64 expires_ms:u64
//	'K' 'x' expires_ms:u64 key     -> ""   (expiry index: the sweep's order)
//
// hash is SHA-256 over the body's kind (JSON or NDJSON) and its bytes
// (BodyHash); first and last are the answer's ids (count is last-first+1:
// a request's ids are contiguous); expires_ms is when the record stops
// answering (written + Window). Integers are big-endian. A record past its
// expiry is ignored by Lookup and deleted by Sweep, which walks the expiry
// index from the oldest and deletes at most maxSweep records per run, so
// the family holds about one record per keyed request of the last Window
// (plus what a sweep has not reached yet).
//
// # Who writes the records
//
// On one node (Pebble mode), Appender wraps the log that package ingest
// appends to: a request whose context carries a Request (WithRequest, set
// by the HTTP handler) is looked up, and appended with the record's hook
// when it is new. Requests with the same key are serialised on a per-key
// lock, so a second one waits for the first one's outcome instead of
// racing it.
//
// In cluster mode the records are part of the replicated log: the node
// that publishes a keyed request puts the key and hash into its first
// stream message, and every node's follower writes the record when it
// applies that message (package internal/cluster). Any node that has
// applied a request then answers its repeats.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/securevision/events/eventlog"
)

// Window is how long an answer is kept for repeats of its request.
const Window = 2 * time.Minute

// MaxKeyLen bounds a key, in bytes. Keys are client-chosen strings (a UUID
// is 36 bytes); the bound keeps the records small.
const MaxKeyLen = 255

// maxSweep bounds the records one Sweep deletes: it runs exclusively on
// the log's writer, and appends wait behind it.
const maxSweep = 4096

// sweepEvery is how often MaybeSweep sweeps at most.
const sweepEvery = 30 * time.Second

// ErrKeyReused reports a key already used for a different body within
// Window (HTTP 422).
var ErrKeyReused = errors.New("idempotency: key already used for a different request body")

// CheckKey reports whether k is a usable key: 1 to MaxKeyLen printable
// ASCII characters (a structured-field string, as the Idempotency-Key
// draft has it).
func CheckKey(k string) error {
	if k == "" || len(k) > MaxKeyLen {
		return fmt.Errorf("must be 1 to %d characters", MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return errors.New("must be printable ASCII")
		}
	}
	return nil
}

// BodyHash is the hash a request's body is compared by: its kind (ndjson
// or JSON, which parse the same bytes differently) and its bytes.
type BodyHash [sha256.Size]byte

// Request is a keyed request as the append path sees it.
type Request struct {
	Key  string
	Hash BodyHash
	// Replayed is set by the append path when the answer is the stored
	// one (nothing was appended); the handler reports it to the client.
	Replayed *bool
}

type ctxKey struct{}

// WithRequest returns ctx carrying req for the append path below it.
func WithRequest(ctx context.Context, req Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, req)
}

// FromContext returns the keyed request ctx carries, if any.
func FromContext(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(ctxKey{}).(Request)
	return r, ok
}

// MarkReplayed records on req that its answer is a replay.
func (req Request) MarkReplayed() {
	if req.Replayed != nil {
		*req.Replayed = true
	}
}

// Answer is a stored idempotency record.
type Answer struct {
	Hash        BodyHash
	First, Last uint64
	ExpiresMs   int64
}

const answerLen = sha256.Size + 8 + 8 + 8

func recordKey(key string) []byte {
	return append([]byte{'K', 'k'}, key...)
}

func expiryKey(expiresMs int64, key string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{'K', 'x'}, uint64(expiresMs))
	return append(k, key...)
}

func encodeAnswer(a Answer) []byte {
	v := make([]byte, 0, answerLen)
	v = append(v, a.Hash[:]...)
	v = binary.BigEndian.AppendUint64(v, a.First)
	v = binary.BigEndian.AppendUint64(v, a.Last)
	return binary.BigEndian.AppendUint64(v, uint64(a.ExpiresMs))
}

func decodeAnswer(v []byte) (Answer, error) {
	if len(v) != answerLen {
		return Answer{}, fmt.Errorf("%w: idempotency record of %d bytes", eventlog.ErrCorrupt, len(v))
	}
	var a Answer
	copy(a.Hash[:], v)
	v = v[sha256.Size:]
	a.First = binary.BigEndian.Uint64(v)
	a.Last = binary.BigEndian.Uint64(v[8:])
	a.ExpiresMs = int64(binary.BigEndian.Uint64(v[16:]))
	return a, nil
}

// Hook returns the AppendHook that stores a's record (its First and Last
// taken from the batch) in the batch that appends the request.
func Hook(req Request, expiresMs int64) eventlog.AppendHook {
	return func(w eventlog.Writer, first, last uint64) error {
		return Put(w, req.Key, Answer{Hash: req.Hash, First: first, Last: last, ExpiresMs: expiresMs})
	}
}

// Put writes an idempotency record.
func Put(w eventlog.Writer, key string, a Answer) error {
	if err := w.Set(recordKey(key), encodeAnswer(a)); err != nil {
		return err
	}
	return w.Set(expiryKey(a.ExpiresMs, key), nil)
}

// Reader is the part of the store Lookup reads.
type Reader interface {
	NewIter(lower, upper []byte) (*eventlog.Iter, error)
}

// Lookup returns key's record if it exists and has not expired at nowMs.
func Lookup(r Reader, key string, nowMs int64) (Answer, bool, error) {
	k := recordKey(key)
	it, err := r.NewIter(k, append(bytes.Clone(k), 0))
	if err != nil {
		return Answer{}, false, err
	}
	defer it.Close()
	if !it.First() {
		return Answer{}, false, it.Error()
	}
	a, err := decodeAnswer(it.Value())
	if err != nil || a.ExpiresMs <= nowMs {
		return Answer{}, false, err
	}
	return a, true, nil
}

// Match answers req from a found record: its ids when the body is the
// same, ErrKeyReused when it is not.
func Match(req Request, a Answer) (first, last uint64, err error) {
	if a.Hash != req.Hash {
		return 0, 0, ErrKeyReused
	}
	req.MarkReplayed()
	return a.First, a.Last, nil
}

// Updater is the part of the log Sweep writes through.
type Updater interface {
	Update(ctx context.Context, fn func(*eventlog.Tx) error) error
}

// Sweep deletes up to maxSweep records that expired before nowMs, oldest
// first, and returns how many.
func Sweep(ctx context.Context, l Updater, nowMs int64) (int, error) {
	n := 0
	err := l.Update(ctx, func(tx *eventlog.Tx) error {
		n = 0
		it, err := tx.NewIter([]byte{'K', 'x'}, expiryKey(nowMs, ""))
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && n < maxSweep; ok = it.Next() {
			k := it.Key()
			if len(k) < 10 {
				continue
			}
			key := string(k[10:])
			// The record may have been rewritten with a later expiry (the
			// key reused after it expired): delete it only if it is this
			// entry's.
			if v, err := tx.Get(recordKey(key)); err == nil {
				if a, err := decodeAnswer(v); err == nil && a.ExpiresMs <= nowMs {
					if err := tx.Delete(recordKey(key)); err != nil {
						return err
					}
				}
			}
			if err := tx.Delete(bytes.Clone(k)); err != nil {
				return err
			}
			n++
		}
		return it.Error()
	})
	return n, err
}

// Sweeper runs Sweep at most every sweepEvery, from whatever goroutine
// calls MaybeSweep (the append path): no goroutine of its own.
type Sweeper struct {
	mu   sync.Mutex
	last time.Time
}

// MaybeSweep sweeps if the last sweep is sweepEvery old. Errors are
// returned for the caller to log; the next call retries.
func (s *Sweeper) MaybeSweep(ctx context.Context, l Updater, now time.Time) (int, error) {
	s.mu.Lock()
	if now.Sub(s.last) < sweepEvery {
		s.mu.Unlock()
		return 0, nil
	}
	s.last = now
	s.mu.Unlock()
	return Sweep(ctx, l, now.UnixMilli())
}

// Locks serialises requests by key: the second request with a key waits
// for the first one's outcome. Entries are reference counted and removed
// when unused, so the map holds only keys in flight. The zero value is
// ready.
type Locks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // one token: held while a request runs
	refs int
}

// Lock takes key's lock, or gives up when ctx ends.
func (k *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Log is what Appender needs of the Pebble log.
type Log interface {
	Reader
	Updater
	AppendWith(ctx context.Context, recs []eventlog.Record, hook eventlog.AppendHook) (first, last uint64, err error)
}

// Appender is the append path of one node (Pebble mode) with idempotency:
// it implements ingest.Appender over the log.
type Appender struct {
	log   Log
	now   func() time.Time
	locks Locks
	sweep Sweeper
}

// NewAppender wraps l; now nil is time.Now.
func NewAppender(l Log, now func() time.Time) *Appender {
	if now == nil {
		now = time.Now
	}
	return &Appender{log: l, now: now}
}

// Append appends recs; a keyed request (WithRequest) is answered from its
// record when one exists, and stores its record with its events when not.
func (a *Appender) Append(ctx context.Context, recs []eventlog.Record) (first, last uint64, err error) {
	req, ok := FromContext(ctx)
	if !ok {
		return a.log.AppendWith(ctx, recs, nil)
	}
	unlock, err := a.locks.Lock(ctx, req.Key)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	now := a.now()
	// Sweep errors are the log's sticky write errors, which the append
	// below returns as well.
	_, _ = a.sweep.MaybeSweep(ctx, a.log, now)
	ans, found, err := Lookup(a.log, req.Key, now.UnixMilli())
	if err != nil {
		return 0, 0, err
	}
	if found {
		return Match(req, ans)
	}
	return a.log.AppendWith(ctx, recs, Hook(req, now.Add(Window).UnixMilli()))
}
