package webhook

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cluster mode (Options.Shared set): the subscriptions and cursors live
// in a JetStream key-value bucket that every node reads and writes, and
// only the node that holds the integrations' lease delivers (Deliver).
//
//	"wh.h." id -> JSON of the subscription (record)
//	"wh.c." id -> u64 cursor, u64 replay epoch (big-endian, 16 bytes)
//
// Every node watches the bucket and keeps the same in-memory webhooks as
// on one node, so the API answers alike on every node. Writes are
// compare-and-set on the revision last read, so two nodes never undo
// each other's change:
//   - create writes the cursor, then the subscription (the watch hands
//     them on in that order, so a webhook is never seen without its
//     cursor);
//   - replay writes the cursor with the epoch raised by one: a node that
//     sees a higher epoch takes that cursor and starts a new generation,
//     as a replay does on one node;
//   - rotate, enable (which raises Gen: the deliverer retries at once),
//     a 410's disable and the skipped count rewrite the subscription;
//   - the delivering node writes its cursors every FlushInterval at the
//     revision it knows: a write that lost to a replay is dropped (the
//     replay wins) and one that lost to a former holder's late write is
//     retried at the new revision;
//   - nodes that do not deliver take every cursor they see, so a node
//     that takes the lease over starts where the last holder's cursors
//     were written (at most FlushInterval behind: those events are
//     delivered again, at least once).

const (
	sharedHookPrefix   = "wh.h."
	sharedCursorPrefix = "wh.c."
	// sharedOpTimeout bounds one key-value request of the API.
	sharedOpTimeout = 5 * time.Second
	// sharedRetries bounds the compare-and-set retries of a change.
	sharedRetries = 8
	// sharedReadyWait bounds New's wait for the bucket's current
	// contents.
	sharedReadyWait = 30 * time.Second
)

// term is one lease term of this node: the delivery goroutines it runs.
type term struct {
	ctx context.Context
	wg  sync.WaitGroup
}

// pendingCursor is a cursor seen before its subscription.
type pendingCursor struct{ cursor, epoch, rev uint64 }

func sharedCursorValue(cursor, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, cursor), epoch)
}

// openShared loads the bucket's webhooks and starts the watcher.
func (m *Manager) openShared() error {
	w, err := m.opts.Shared.Watch(m.ctx, sharedHookPrefix[:3]+">")
	if err != nil {
		return fmt.Errorf("webhook: watch the shared bucket: %w", err)
	}
	ready := make(chan struct{})
	m.wg.Add(1)
	go m.watchShared(w, ready)
	select {
	case <-ready:
		return nil
	case <-time.After(sharedReadyWait):
		return fmt.Errorf("webhook: the shared bucket's contents did not arrive within %s", sharedReadyWait)
	}
}

// watchShared applies the bucket's changes until the manager closes.
func (m *Manager) watchShared(w jetstream.KeyWatcher, ready chan struct{}) {
	defer m.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-m.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			m.applyEntry(e)
		}
	}
}

func (m *Manager) applyEntry(e jetstream.KeyValueEntry) {
	key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, sharedHookPrefix):
		id := key[len(sharedHookPrefix):]
		if !put {
			m.dropShared(id)
			return
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.V != recordVersion || rec.URL == "" {
			m.logger.Error("webhook: shared subscription unreadable, not delivered", "webhook", id)
			return
		}
		m.applyRecord(id, rec, e.Revision())
	case strings.HasPrefix(key, sharedCursorPrefix) && put && len(e.Value()) == 16:
		v := e.Value()
		m.applyCursor(key[len(sharedCursorPrefix):], binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), e.Revision())
	}
}

// applyRecord makes webhook id's subscription the one at revision rev.
func (m *Manager) applyRecord(id string, rec record, rev uint64) {
	m.mu.Lock()
	h := m.mu.hooks[id]
	if h == nil {
		defer m.mu.Unlock()
		if m.mu.closed {
			return
		}
		pc := m.mu.pending[id]
		delete(m.mu.pending, id)
		nh, err := newHook(m, id, rec, pc.cursor)
		if err != nil {
			m.logger.Error("webhook: shared subscription invalid, not delivered", "webhook", id, "err", err)
			return
		}
		nh.mu.rrev, nh.mu.crev, nh.mu.epoch = rev, pc.rev, pc.epoch
		m.mu.hooks[id] = nh
		if m.mu.term != nil {
			m.startTermLocked(nh)
		}
		return
	}
	m.mu.Unlock()
	wake := false
	h.mu.Lock()
	if rev > h.mu.rrev && !h.mu.deleted {
		h.mu.rrev = rev
		if rec.Secret != h.mu.secret {
			if key, err := decodeSecret(rec.Secret); err == nil {
				h.mu.secret, h.mu.key = rec.Secret, key
			}
		}
		state := stateActive
		if rec.State == stateDisabled {
			state = stateDisabled
		}
		if rec.Gen > h.mu.recGen || state != h.mu.state {
			h.mu.recGen = max(h.mu.recGen, rec.Gen)
			h.mu.state = state
			h.resetLocked()
			wake = true
		}
		h.mu.skipped = max(h.mu.skipped, rec.Skipped)
	}
	h.mu.Unlock()
	if wake {
		h.wake()
	}
}

// applyCursor takes webhook id's cursor at revision rev (see the
// comment at the top of this file).
func (m *Manager) applyCursor(id string, cursor, epoch, rev uint64) {
	m.mu.Lock()
	h := m.mu.hooks[id]
	delivering := m.mu.term != nil
	if h == nil {
		if p, ok := m.mu.pending[id]; !ok || rev > p.rev {
			m.mu.pending[id] = pendingCursor{cursor, epoch, rev}
		}
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	wake := false
	h.mu.Lock()
	if rev > h.mu.crev {
		h.mu.crev = rev
		switch {
		case epoch > h.mu.epoch:
			h.mu.epoch = epoch
			h.mu.cursor, h.mu.persisted = cursor, cursor
			h.resetLocked()
			wake = true
		case !delivering:
			h.mu.cursor, h.mu.persisted = cursor, cursor
		}
	}
	h.mu.Unlock()
	if wake {
		h.wake()
	}
}

// dropShared forgets a webhook deleted from the bucket.
func (m *Manager) dropShared(id string) {
	m.mu.Lock()
	h := m.mu.hooks[id]
	delete(m.mu.hooks, id)
	delete(m.mu.pending, id)
	m.mu.Unlock()
	if h != nil {
		h.stop()
		m.m.forget(id)
	}
}

// Deliver runs the deliveries of every webhook on this node until ctx
// ends (cluster mode: while this node holds the integrations' lease),
// then waits for them to stop and writes their cursors. It returns at
// once on one node, where the webhooks deliver from New on.
func (m *Manager) Deliver(ctx context.Context) {
	if m.opts.Shared == nil {
		return
	}
	m.mu.Lock()
	if m.mu.closed || m.mu.term != nil {
		m.mu.Unlock()
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &term{ctx: tctx}
	m.mu.term = t
	for _, h := range m.mu.hooks {
		m.startTermLocked(h)
	}
	n := len(m.mu.hooks)
	m.mu.Unlock()
	m.logger.Info("webhooks: this node delivers", "webhooks", n)
	select {
	case <-tctx.Done():
	case <-m.ctx.Done():
	}
	m.mu.Lock()
	m.mu.term = nil
	m.mu.Unlock()
	cancel()
	t.wg.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), sharedOpTimeout)
	defer fcancel()
	if err := m.flush(fctx); err != nil {
		m.logger.Error("webhook: persist cursors at the end of the lease", "err", err)
	}
	m.logger.Info("webhooks: this node stopped delivering")
}

// startTermLocked starts h's delivery goroutine for the current term;
// m.mu held.
func (m *Manager) startTermLocked(h *hook) {
	t := m.mu.term
	rctx, rcancel := context.WithCancel(h.ctx)
	stop := context.AfterFunc(t.ctx, rcancel)
	h.rctx = rctx
	t.wg.Add(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer t.wg.Done()
		defer stop()
		defer rcancel()
		h.run()
	}()
}

// createShared stores a new webhook in the bucket: its cursor first,
// then its subscription.
func (m *Manager) createShared(id string, rec *record, cursor uint64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
	defer cancel()
	crev, err := m.opts.Shared.Create(ctx, sharedCursorPrefix+id, sharedCursorValue(cursor, 0))
	if err != nil {
		return fmt.Errorf("webhook: shared store: %w", err)
	}
	rrev, err := m.opts.Shared.Create(ctx, sharedHookPrefix+id, b)
	if err != nil {
		return fmt.Errorf("webhook: shared store: %w", err)
	}
	m.applyCursor(id, cursor, 0, crev)
	m.applyRecord(id, *rec, rrev)
	return nil
}

// removeShared deletes a webhook from the bucket.
func (m *Manager) removeShared(id string) error {
	ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
	defer cancel()
	if err := m.opts.Shared.Delete(ctx, sharedHookPrefix+id); err != nil {
		return fmt.Errorf("webhook: shared store: %w", err)
	}
	if err := m.opts.Shared.Delete(ctx, sharedCursorPrefix+id); err != nil {
		return fmt.Errorf("webhook: shared store: %w", err)
	}
	m.dropShared(id)
	return nil
}

// changeShared rewrites webhook id's subscription with fn, compare-and-
// set, and applies it here at once.
func (m *Manager) changeShared(ctx context.Context, id string, fn func(rec *record) error) error {
	for try := 0; ; try++ {
		e, err := m.opts.Shared.Get(ctx, sharedHookPrefix+id)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("webhook: shared store: %w", err)
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return fmt.Errorf("webhook: shared subscription %s unreadable: %w", id, err)
		}
		if err := fn(&rec); err != nil {
			return err
		}
		b, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		rev, err := m.opts.Shared.Update(ctx, sharedHookPrefix+id, b, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && try < sharedRetries {
			continue
		}
		if err != nil {
			return fmt.Errorf("webhook: shared store: %w", err)
		}
		m.applyRecord(id, rec, rev)
		return nil
	}
}

// replayShared moves webhook id's cursor to after with a new epoch.
func (m *Manager) replayShared(id string, after uint64) error {
	ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
	defer cancel()
	for try := 0; ; try++ {
		e, err := m.opts.Shared.Get(ctx, sharedCursorPrefix+id)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("webhook: shared store: %w", err)
		}
		var epoch uint64
		if v := e.Value(); len(v) == 16 {
			epoch = binary.BigEndian.Uint64(v[8:])
		}
		rev, err := m.opts.Shared.Update(ctx, sharedCursorPrefix+id, sharedCursorValue(after, epoch+1), e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && try < sharedRetries {
			continue
		}
		if err != nil {
			return fmt.Errorf("webhook: shared store: %w", err)
		}
		m.applyCursor(id, after, epoch+1, rev)
		return nil
	}
}

// flushShared writes the moved cursors of this node's deliveries (and a
// changed skipped count), each compare-and-set at the revision known.
func (m *Manager) flushShared(ctx context.Context) error {
	var errs []error
	for _, h := range m.list() {
		h.mu.Lock()
		if h.mu.deleted || (h.mu.cursor == h.mu.persisted && !h.mu.recDirty) {
			h.mu.Unlock()
			continue
		}
		cursor, epoch, crev, moved := h.mu.cursor, h.mu.epoch, h.mu.crev, h.mu.cursor != h.mu.persisted
		dirty, skipped := h.mu.recDirty, h.mu.skipped
		h.mu.Unlock()
		if moved {
			rev, err := m.opts.Shared.Update(ctx, sharedCursorPrefix+h.id, sharedCursorValue(cursor, epoch), crev)
			switch {
			case err == nil:
				h.mu.Lock()
				if rev > h.mu.crev {
					h.mu.crev = rev
				}
				if h.mu.epoch == epoch {
					h.mu.persisted = cursor
				}
				h.mu.Unlock()
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
				// A replay, or a former holder's late write: the watch
				// brings the newer revision; the next flush decides.
			default:
				errs = append(errs, err)
			}
		}
		if dirty {
			err := m.changeShared(ctx, h.id, func(rec *record) error {
				rec.Skipped = max(rec.Skipped, skipped)
				return nil
			})
			if err == nil {
				h.mu.Lock()
				h.mu.recDirty = false
				h.mu.Unlock()
			} else if !errors.Is(err, errNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// newShared finishes New in cluster mode: the webhooks come from the
// bucket, and nothing delivers until Deliver.
func (m *Manager) newShared() (*Manager, error) {
	m.m = newMetrics(m.opts.Registerer, m)
	m.unsub = m.opts.Subscribe(m.committed)
	if err := m.openShared(); err != nil {
		m.unsub()
		m.cancel()
		m.wg.Wait()
		m.m.unregister()
		return nil, err
	}
	m.wg.Add(1)
	go m.flusher()
	m.mu.Lock()
	n := len(m.mu.hooks)
	m.mu.Unlock()
	m.logger.Info("webhooks started (cluster mode: delivered by the lease holder)", "webhooks", n,
		"allow_loopback", m.opts.AllowLoopback, "timeout", m.opts.Timeout, "max_concurrency", m.opts.MaxConcurrency)
	return m, nil
}

// sharedStatus is the answer of a change in cluster mode.
func (m *Manager) sharedStatus(id string, err error) (status, error) {
	if err != nil {
		return status{}, err
	}
	h := m.get(id)
	if h == nil {
		return status{}, errNotFound
	}
	return h.status(m.opts.Log.LastID()), nil
}
