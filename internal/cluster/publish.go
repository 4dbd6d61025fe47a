package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

// UnavailableError is a write the cluster did not acknowledge (HTTP 503).
// It wraps ingest.ErrUnavailable and carries the detail the client sees.
type UnavailableError struct {
	Detail string
	Err    error
}

func (e *UnavailableError) Error() string { return "cluster: " + e.Detail + ": " + e.Err.Error() }

// Unwrap lets errors.Is find ingest.ErrUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ingest.ErrUnavailable, e.Err} }

// HTTPDetail is the detail of the 503 answer.
func (e *UnavailableError) HTTPDetail() string { return e.Detail }

// retryInflightEvery is the pause before retrying a batch the server
// refused because too many were in flight.
const retryInflightEvery = 20 * time.Millisecond

// Append publishes recs as one atomic batch and returns their ids once
// the stream acknowledged them and this node applied them (the
// ingest.Appender of cluster mode). A keyed request (idempotency.
// WithRequest) is answered from its record when one exists.
func (n *Node) Append(ctx context.Context, recs []eventlog.Record) (first, last uint64, err error) {
	if len(recs) == 0 {
		return 0, 0, eventlog.ErrEmpty
	}
	if len(recs) > MaxBatch {
		return 0, 0, &ingest.TooLargeError{Msg: fmt.Sprintf("%d items in one request; in cluster mode the limit is %d (one atomic JetStream batch)", len(recs), MaxBatch)}
	}
	req, keyed := idempotency.FromContext(ctx)
	if keyed {
		unlock, err := n.locks.Lock(ctx, req.Key)
		if err != nil {
			return 0, 0, err
		}
		defer unlock()
		if first, last, ok, err := n.answer(ctx, req); ok || err != nil {
			return first, last, err
		}
	}
	msgs, err := n.messages(recs, req, keyed)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	first, last, dup, err := n.publish(ctx, msgs)
	if err != nil {
		n.m.publishErrors.Inc()
		return 0, 0, err
	}
	n.m.publishSeconds.Observe(time.Since(start).Seconds())
	if dup {
		// JetStream has this key's request: answer from its record once
		// this node has applied the stream that far.
		if err := n.waitApplyTimeout(ctx, last); err != nil {
			return 0, 0, err
		}
		first, last, ok, err := n.answer(ctx, req)
		if err == nil && !ok {
			err = &UnavailableError{Detail: "JetStream reports this Idempotency-Key as used, but its answer is not known on this node: retry later", Err: errors.New("idempotency record not found")}
		}
		return first, last, err
	}
	if err := n.waitApplyTimeout(ctx, last); err != nil {
		return 0, 0, &UnavailableError{Detail: fmt.Sprintf("the events were stored as ids %d..%d but this node has not applied them yet; a retry with the same Idempotency-Key returns them", first, last), Err: err}
	}
	return first, last, nil
}

// answer looks a keyed request up in this node's idempotency records.
func (n *Node) answer(ctx context.Context, req idempotency.Request) (first, last uint64, ok bool, err error) {
	a, found, err := idempotency.Lookup(n.o.Log, req.Key, n.o.Now().UnixMilli())
	if err != nil || !found {
		return 0, 0, false, err
	}
	first, last, err = idempotency.Match(req, a)
	if err != nil {
		return 0, 0, true, err
	}
	// The record is written with the request's first message: make sure
	// the rest is applied too before answering.
	return first, last, true, n.waitApplyTimeout(ctx, last)
}

// waitApplyTimeout waits for the follower at most ApplyTimeout.
func (n *Node) waitApplyTimeout(ctx context.Context, seq uint64) error {
	wctx, cancel := context.WithTimeout(ctx, n.o.ApplyTimeout)
	defer cancel()
	return n.waitApplied(wctx, seq)
}

// messages encodes recs, refusing events the server would refuse.
func (n *Node) messages(recs []eventlog.Record, req idempotency.Request, keyed bool) ([]*nats.Msg, error) {
	created := max(n.o.Now().UnixMilli(), n.maxCreated.Load())
	n.raiseCreated(created)
	maxPayload := n.nc.MaxPayload()
	msgs := make([]*nats.Msg, len(recs))
	for i := range recs {
		rec := &recs[i]
		if len(rec.Source) > eventlog.MaxSourceBytes {
			return nil, fmt.Errorf("%w: record %d", eventlog.ErrSourceTooLong, i)
		}
		var info *requestInfo
		size := eventSize(rec)
		if i == 0 {
			info = &requestInfo{count: uint32(len(recs))}
			if keyed {
				info.key, info.hash = req.Key, req.Hash
			}
			size += trailerMax
		}
		// Headers (batch id and sequence, message id) take a few hundred
		// bytes of the payload limit.
		if int64(size)+512 > maxPayload {
			return nil, &ingest.TooLargeError{Msg: fmt.Sprintf("item %d is %d bytes stored; in cluster mode one event may take at most %d bytes (the NATS server's max_payload)", i, size, maxPayload-512)}
		}
		m := &nats.Msg{
			Subject: n.prefix + ".e." + typeToken(rec.Type),
			Data:    appendEvent(make([]byte, 0, size), created, rec, info),
			Header:  nats.Header{},
		}
		if i == 0 && keyed {
			m.Header.Set(jetstream.MsgIDHeader, req.Key)
		}
		msgs[i] = m
	}
	return msgs, nil
}

func typeToken(code uint8) string {
	if name := vocab.TypeName(code); name != "" {
		return name
	}
	return "unknown"
}

func (n *Node) raiseCreated(ms int64) {
	for {
		cur := n.maxCreated.Load()
		if ms <= cur || n.maxCreated.CompareAndSwap(cur, ms) {
			return
		}
	}
}

// publish sends msgs, one message alone or as an atomic batch, within
// PublishTimeout. dup reports that JetStream refused them as a repeat of
// a stored message id; last is then the stream's last sequence, through
// which the original is stored.
func (n *Node) publish(ctx context.Context, msgs []*nats.Msg) (first, last uint64, dup bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, n.o.PublishTimeout)
	defer cancel()
	if len(msgs) == 1 {
		ack, err := n.js.PublishMsg(pctx, msgs[0])
		if err != nil {
			return 0, 0, false, n.unavailable(ctx, err)
		}
		n.noteLast(ack.Sequence)
		return ack.Sequence, ack.Sequence, ack.Duplicate, nil
	}
	select {
	case n.inflight <- struct{}{}:
		defer func() { <-n.inflight }()
	case <-pctx.Done():
		return 0, 0, false, n.unavailable(ctx, pctx.Err())
	}
	for {
		// Flow control: no ack of the first message. A refused batch is
		// refused at its commit, and the round trip would slow every
		// request down.
		ack, err := jetstreamext.PublishMsgBatch(pctx, n.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: n.o.PublishTimeout})
		switch {
		case err == nil:
			n.noteLast(ack.Sequence)
			return ack.Sequence - ack.BatchSize + 1, ack.Sequence, false, nil
		case errors.Is(err, jetstreamext.ErrBatchPublishDuplicateMsgID):
			info, ierr := n.stream.Info(pctx)
			if ierr != nil {
				return 0, 0, false, n.unavailable(ctx, ierr)
			}
			n.noteLast(info.State.LastSeq)
			return 0, info.State.LastSeq, true, nil
		case errors.Is(err, jetstreamext.ErrAtomicPublishTooManyInflight) || errors.Is(err, jetstreamext.ErrBatchPublishIncomplete):
			// The server has too many batches in flight, or lost part of
			// this one (a leader change mid-batch): nothing was stored,
			// so sending it again is safe.
			n.m.batchRetries.Inc()
			select {
			case <-pctx.Done():
				return 0, 0, false, n.unavailable(ctx, err)
			case <-time.After(retryInflightEvery):
			}
			// PublishMsgBatch sets its headers on the messages again.
			for _, m := range msgs {
				m.Reply = ""
			}
		default:
			return 0, 0, false, n.unavailable(ctx, err)
		}
	}
}

// unavailable turns a publish failure into the 503 the client sees.
func (n *Node) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the client went away
	}
	why := "no acknowledgement within " + n.o.PublishTimeout.String() + " (no stream leader or no quorum of its replicas)"
	switch {
	case !n.nc.IsConnected():
		why = "no NATS server is connected"
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		why = "the stream has no leader (JetStream is electing one or lost its quorum)"
	}
	return &UnavailableError{
		Detail: fmt.Sprintf("Cluster unavailable: stream %s: %s. The batch was not acknowledged; retry with the same Idempotency-Key to store it exactly once", n.o.Stream, why),
		Err:    err,
	}
}

// Cleanup deletes, on every node, the events whose ts_ms is before
// cutoffMs: it appends a retention marker, waits until this node applied
// it (every other node applies it at the same stream position) and then
// trims the stream. It returns how many events this node deleted.
func (n *Node) Cleanup(ctx context.Context, cutoffMs int64) (int, error) {
	msg := &nats.Msg{Subject: n.prefix + ".r", Data: appendMarker(nil, cutoffMs, n.o.Name)}
	pctx, cancel := context.WithTimeout(ctx, n.o.PublishTimeout)
	ack, err := n.js.PublishMsg(pctx, msg)
	cancel()
	if err != nil {
		return 0, n.unavailable(ctx, err)
	}
	n.noteLast(ack.Sequence)
	if err := n.waitApplyTimeout(ctx, ack.Sequence); err != nil {
		return 0, fmt.Errorf("cluster: cleanup marker %d not applied: %w", ack.Sequence, err)
	}
	n.mu.Lock()
	res, ok := n.mu.results[ack.Sequence]
	delete(n.mu.results, ack.Sequence)
	n.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("cluster: cleanup marker %d applied without a result", ack.Sequence)
	}
	if err := n.trim(ctx, res.low, res.late); err != nil {
		// Every node has deleted the events; the stream keeps them until
		// the next cleanup trims past them.
		n.o.Logger.Warn("stream trim failed", "err", err, "low_id", res.low)
	}
	return res.deleted, nil
}

// trim removes from the stream what retention deleted: the prefix below
// low with one purge, the late ids one by one.
func (n *Node) trim(ctx context.Context, low uint64, late []uint64) error {
	tctx, cancel := context.WithTimeout(ctx, n.o.PublishTimeout)
	defer cancel()
	if low > 1 {
		if err := n.stream.Purge(tctx, jetstream.WithPurgeSequence(low)); err != nil {
			return fmt.Errorf("purge below %d: %w", low, err)
		}
	}
	for _, id := range late {
		if id < low {
			continue
		}
		if err := n.stream.DeleteMsg(tctx, id); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("delete %d: %w", id, err)
		}
	}
	n.m.trimmed.Add(float64(len(late)))
	return nil
}
