package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

// What one apply takes at most: one Pebble batch and one fsync for many
// messages is what makes catching up fast, and the bounds keep the
// batch, and the time the writer is busy with it, reasonable.
const (
	maxApplyMsgs  = 4096
	maxApplyBytes = 16 << 20
)

// queueLen is the channel between the consumer's callback and the apply
// loop; pullMax the consumer's outstanding pull. Together they bound what
// the follower buffers in memory.
const (
	queueLen = 8192
	pullMax  = 4096
)

// stallCheck and stallAfter: how often the follower checks that its
// consumer delivers while the stream is ahead of it, and after how long
// without a message it starts a new one. Long enough for a JetStream
// election and the consumer's own recovery.
const (
	stallCheck = 5 * time.Second
	stallAfter = 30 * time.Second
)

var (
	errConsumerStopped = errors.New("cluster: stream consumer stopped")
	errConsumerStalled = errors.New("cluster: stream consumer delivered nothing while the stream is ahead")
)

// maxFollowBackoff caps the wait between attempts to start the consumer
// while NATS or the stream is unavailable.
const maxFollowBackoff = 2 * time.Second

// follow is the follower: it (re)starts an ordered consumer after the
// applied position and applies what it delivers, until the node closes.
func (n *Node) follow() {
	defer n.done.Done()
	wait := 100 * time.Millisecond
	for {
		err := n.followOnce()
		select {
		case <-n.stop:
			return
		default:
		}
		if err != nil {
			n.o.Logger.Warn("stream follower restarting", "err", err, "applied_id", n.applied.Load(), "retry_in", wait.String())
		}
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, maxFollowBackoff)
	}
}

// followOnce runs one consumer until the node closes or applying fails.
// The ordered consumer recovers from outages itself (it recreates the
// server-side consumer from the last sequence it delivered); followOnce
// returns only when it cannot be created at all, or when the local store
// fails, in which case the next attempt starts over from the persisted
// position.
func (n *Node) followOnce() error {
	start := n.applied.Load() + 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cons, err := n.js.OrderedConsumer(ctx, n.o.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
	})
	cancel()
	if err != nil {
		return err
	}
	q := make(chan jetstream.Msg, queueLen)
	quit := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case q <- m:
		case <-quit:
		}
	}, jetstream.PullMaxMessages(pullMax), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		n.o.Logger.Debug("stream consumer", "err", err)
	}))
	if err != nil {
		return err
	}
	defer func() {
		close(quit)
		cc.Stop()
	}()
	f := &applier{n: n, seen: start - 1}
	batch := make([]jetstream.Msg, 0, maxApplyMsgs)
	stall := time.NewTicker(stallCheck)
	defer stall.Stop()
	lastMsg := time.Now()
	for {
		var m jetstream.Msg
		select {
		case <-n.stop:
			return nil
		case m = <-q:
		case <-cc.Closed():
			select {
			case m = <-q:
			default:
				return errConsumerStopped
			}
		case <-stall.C:
			// The ordered consumer recovers from outages by itself; one
			// that delivers nothing while the stream is known to be ahead
			// is started again from the applied position.
			if n.lastSeq.Load() > n.applied.Load() && time.Since(lastMsg) > stallAfter {
				return errConsumerStalled
			}
			continue
		}
		lastMsg = time.Now()
		batch = append(batch[:0], m)
		size := len(m.Data())
	drain:
		for len(batch) < maxApplyMsgs && size < maxApplyBytes {
			select {
			case m := <-q:
				batch = append(batch, m)
				size += len(m.Data())
			default:
				break drain
			}
		}
		if err := f.apply(batch); err != nil {
			return err
		}
		clear(batch) // the messages' buffers are garbage once applied
	}
}

// applier turns delivered messages into appends to the local log.
type applier struct {
	n *Node
	// seen is the highest sequence taken from the consumer: an ordered
	// consumer that recreated itself may deliver some again.
	seen uint64

	recs []eventlog.Record
	at   []eventlog.At
	reqs []pendingRequest
	buf  []byte // check's scratch
}

// pendingRequest is an idempotency record to write with its first event.
type pendingRequest struct {
	key string
	a   idempotency.Answer
}

// apply applies a run of delivered messages in order: the events with
// one AppendAt (with the applied position and the idempotency records in
// the same batch), a retention marker by running its cleanup between the
// events before and after it.
func (f *applier) apply(msgs []jetstream.Msg) error {
	n := f.n
	f.recs, f.at, f.reqs = f.recs[:0], f.at[:0], f.reqs[:0]
	through := n.applied.Load()
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			n.m.malformed.Inc()
			continue
		}
		seq := md.Sequence.Stream
		if seq <= f.seen {
			continue
		}
		f.seen = seq
		n.noteLast(seq + md.NumPending)
		through = seq
		subj := m.Subject()
		switch {
		case strings.HasPrefix(subj, n.prefix+".e."):
			e, err := decodeEvent(m.Data())
			if err == nil {
				err = f.check(&e)
			}
			if err != nil {
				n.m.malformed.Inc()
				n.o.Logger.Warn("stream message skipped", "seq", seq, "subject", subj, "err", err)
				continue
			}
			f.recs = append(f.recs, e.rec)
			f.at = append(f.at, eventlog.At{ID: seq, CreatedMs: e.createdMs})
			if e.req != nil && e.req.key != "" {
				f.reqs = append(f.reqs, pendingRequest{key: e.req.key, a: idempotency.Answer{
					Hash: e.req.hash, First: seq, Last: seq + uint64(e.req.count) - 1,
					ExpiresMs: e.createdMs + idempotency.Window.Milliseconds(),
				}})
			}
		case subj == n.prefix+".r":
			mk, err := decodeMarker(m.Data())
			if err != nil {
				n.m.malformed.Inc()
				n.o.Logger.Warn("stream message skipped", "seq", seq, "subject", subj, "err", err)
				continue
			}
			if err := f.flush(seq - 1); err != nil {
				return err
			}
			if err := f.retention(seq, mk); err != nil {
				return err
			}
		default:
			n.m.malformed.Inc()
		}
	}
	return f.flush(through)
}

// check refuses an event that would not be a valid record: an unknown
// type, a ts_ms that is not positive, or JSON parts that do not make a
// valid object. Only nodes publish on the stream's subjects, but the
// store must never hold invalid JSON whatever arrives.
func (f *applier) check(e *event) error {
	if vocab.TypeName(e.rec.Type) == "" || e.rec.TsMs <= 0 || len(e.rec.Head) == 0 || len(e.rec.Tail) == 0 {
		return errBadMessage
	}
	b := append(f.buf[:0], '{')
	b = append(b, e.rec.Head...)
	b = append(b, `,"id":0,`...)
	b = append(b, e.rec.Tail...)
	b = append(b, '}')
	f.buf = b
	if fastjson.ValidateBytes(b) != nil {
		return errBadMessage
	}
	return nil
}

// flush appends the collected events and moves the applied position to
// through, in one batch.
func (f *applier) flush(through uint64) error {
	n := f.n
	if through <= n.applied.Load() && len(f.recs) == 0 {
		return nil
	}
	reqs := f.reqs
	hook := func(w eventlog.Writer, _, _ uint64) error {
		for _, r := range reqs {
			if err := idempotency.Put(w, r.key, r.a); err != nil {
				return err
			}
		}
		return w.Set(keyApplied, binary.BigEndian.AppendUint64(nil, through))
	}
	start := time.Now()
	if err := n.o.Log.AppendAt(context.Background(), f.recs, f.at, through, hook); err != nil {
		// The position is persisted with the records it covers, so
		// ErrOutOfOrder means the store and the stream disagree (a stream
		// recreated under the same name is refused at start): the
		// follower restarts from the persisted position and says so.
		return err
	}
	if len(f.recs) > 0 {
		n.m.applied.Add(float64(len(f.recs)))
		n.m.applySeconds.Observe(time.Since(start).Seconds())
		n.raiseCreated(f.at[len(f.at)-1].CreatedMs)
	}
	clear(f.recs) // they alias the messages
	f.recs, f.at, f.reqs = f.recs[:0], f.at[:0], nil
	n.advance(through)
	if len(reqs) > 0 {
		if _, err := n.sweep.MaybeSweep(context.Background(), n.o.Log, n.o.Now()); err != nil {
			return err
		}
	}
	return nil
}

// retention applies a marker at seq: this node's cleanup with the
// marker's cutoff, over exactly what was applied before it. The node
// whose marker it is then trims the stream.
func (f *applier) retention(seq uint64, mk marker) error {
	n := f.n
	deleted, low, late, err := n.o.View.CleanupIDs(context.Background(), mk.cutoffMs)
	if err != nil {
		return err
	}
	if err := f.flush(seq); err != nil {
		return err
	}
	n.m.markers.Inc()
	if mk.origin == n.o.Name {
		n.mu.Lock()
		n.mu.results[seq] = cleanupResult{deleted: deleted, low: low, late: late}
		// Results nobody collects (a cleanup whose caller gave up) must
		// not pile up.
		for s := range n.mu.results {
			if s+1024 < seq {
				delete(n.mu.results, s)
			}
		}
		n.mu.Unlock()
	}
	return nil
}
