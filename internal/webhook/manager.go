package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/nilcheck"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one delivery attempt, connect to answer: a
	// receiver that takes longer is retried like one that failed.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConcurrency bounds the requests in flight across all
	// webhooks, so many failing receivers cannot hold many connections
	// and goroutines busy at once.
	DefaultMaxConcurrency = 32
	// DefaultInitialBackoff is the first retry's delay before jitter: the
	// first retry comes 1–2 s after the failure.
	DefaultInitialBackoff = 2 * time.Second
	// DefaultMaxBackoff caps the exponential back-off.
	DefaultMaxBackoff = 5 * time.Minute
	// MaxRetryAfter caps a receiver's Retry-After: a receiver asking for
	// more is still retried within the hour.
	MaxRetryAfter = time.Hour
	// DefaultFlushInterval is how often moved cursors are written: the
	// most a crash can make a webhook deliver again.
	DefaultFlushInterval = time.Second
	// DefaultMaxWebhooks bounds the webhooks (each has a goroutine and
	// its own metric series).
	DefaultMaxWebhooks = 1000
)

// Options configure a Manager. Log and Subscribe are required.
type Options struct {
	// Log is the log of record: the webhooks read it from their cursors
	// and keep their state in it (Update).
	Log eventlog.RecordLog
	// Subscribe adds a function to the commit bus (core.Core.Subscribe);
	// the Manager's only wakes its webhooks.
	Subscribe func(func(eventlog.Batch)) (unsubscribe func())
	// Decorate, when set, turns an event's stored JSON into the JSON
	// that GET /events/{id} answers (for example with a correction
	// added): it appends it to dst and returns it. nil sends the stored
	// JSON as it is.
	Decorate func(dst []byte, id uint64, stored []byte) []byte
	// AllowLoopback lets webhook URLs reach loopback addresses.
	AllowLoopback bool
	// Timeout bounds one delivery attempt; 0 is DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrency bounds the requests in flight across all webhooks;
	// 0 is DefaultMaxConcurrency.
	MaxConcurrency int
	// InitialBackoff and MaxBackoff shape the retry delays (see
	// backoff); 0 is the default. Tests make them short.
	InitialBackoff, MaxBackoff time.Duration
	// FlushInterval is how often moved cursors are persisted; 0 is
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxWebhooks bounds the number of webhooks; 0 is
	// DefaultMaxWebhooks.
	MaxWebhooks int
	// Now is the clock (webhook-timestamp, last_success_at); nil is
	// time.Now.
	Now func() time.Time
	// Logger receives lifecycle and state-change messages (never a
	// secret, never a URL's query); nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Shared, in cluster mode, is the key-value bucket that holds every
	// node's webhooks and cursors (package lease's state bucket): the
	// subscriptions and cursors live there instead of in Log, and only
	// Deliver delivers (see shared.go). nil on one node.
	Shared jetstream.KeyValue

	// lookup resolves host names for the creation-time check; nil is
	// the system resolver (tests play a changing DNS answer).
	lookup lookupFunc
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case nilcheck.IsNil(o.Log) || o.Subscribe == nil:
		return errors.New("webhook: Log and Subscribe are required")
	case o.Timeout < 0, o.MaxConcurrency < 0, o.InitialBackoff < 0, o.MaxBackoff < 0, o.FlushInterval < 0, o.MaxWebhooks < 0:
		return errors.New("webhook: negative option")
	}
	return nil
}

func (o *Options) defaults() {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.InitialBackoff == 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxWebhooks == 0 {
		o.MaxWebhooks = DefaultMaxWebhooks
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.lookup == nil {
		o.lookup = systemLookup
	}
}

// Manager runs the webhooks: their API (Routes), their delivery
// goroutines and the persistence of their cursors.
type Manager struct {
	opts   Options
	policy policy
	client *http.Client
	sem    chan struct{}
	m      *metrics
	logger *slog.Logger

	// tick is closed and replaced on every committed batch: idle
	// webhooks wait on it (see the package doc).
	tick atomic.Pointer[chan struct{}]
	// tail is the newest committed batch of the in-memory chain that
	// caught-up webhooks follow (see node).
	tail atomic.Pointer[node]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	unsub  func()

	// persistMu serialises writes to the store (see the package doc).
	persistMu sync.Mutex

	mu struct {
		sync.Mutex
		hooks  map[string]*hook
		closed bool
		// Cluster mode: cursors seen before their subscriptions, and
		// the lease term delivering (nil: this node does not deliver).
		pending map[string]pendingCursor
		term    *term
	}
	closeOnce sync.Once
	closeErr  error
}

// New loads the stored webhooks and starts delivering: each webhook's
// goroutine, the cursor flusher and the commit-bus subscription. Call it
// after the core is open; Close it before the core closes.
func New(o Options) (*Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	m := &Manager{opts: o, policy: policy{allowLoopback: o.AllowLoopback}, logger: o.Logger}
	m.mu.hooks = map[string]*hook{}
	m.mu.pending = map[string]pendingCursor{}
	m.sem = make(chan struct{}, o.MaxConcurrency)
	m.client = newClient(m.policy, o.MaxConcurrency)
	ch := make(chan struct{})
	m.tick.Store(&ch)
	m.tail.Store(&node{last: o.Log.LastID()})
	m.ctx, m.cancel = context.WithCancel(context.Background())

	if o.Shared != nil {
		return m.newShared()
	}
	stored, bad, err := load(o.Log)
	if err != nil {
		return nil, err
	}
	for _, id := range bad {
		m.logger.Error("webhook: stored subscription unreadable, not delivered", "webhook", id)
	}
	for _, s := range stored {
		h, err := newHook(m, s.id, s.rec, s.cursor)
		if err != nil {
			m.logger.Error("webhook: stored subscription invalid, not delivered", "webhook", s.id, "err", err)
			continue
		}
		m.mu.hooks[s.id] = h
	}
	m.m = newMetrics(o.Registerer, m)
	m.unsub = o.Subscribe(m.committed)
	for _, h := range m.mu.hooks {
		m.start(h)
	}
	m.wg.Add(1)
	go m.flusher()
	m.logger.Info("webhooks started", "webhooks", len(m.mu.hooks), "allow_loopback", o.AllowLoopback,
		"timeout", o.Timeout, "max_concurrency", o.MaxConcurrency)
	return m, nil
}

// newClient is the one HTTP client of every delivery: keep-alive
// connections (as many idle per host as requests may be in flight), no
// proxy (the address checked must be the address reached), no redirects,
// and the policy checked in the dialer on each resolved address.
func newClient(p policy, conc int) *http.Client {
	d := &net.Dialer{Timeout: DefaultTimeout, KeepAlive: 30 * time.Second, Control: p.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * conc,
		MaxIdleConnsPerHost:   conc,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   DefaultTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// node is one committed batch in a singly linked chain, newest at
// Manager.tail. A webhook that has caught up with the log holds the node
// of its cursor and reads the batches after it from memory instead of
// from the store: filtering what a busy log appends costs it no store
// read. Nodes nobody holds are garbage; a webhook drops its node before
// it delivers, waits out a back-off or falls behind (maxMemoryLag), so a
// slow receiver never pins the chain.
type node struct {
	b    eventlog.Batch
	last uint64 // id of the batch's last entry
	next atomic.Pointer[node]
}

// committed is the commit-bus subscriber: it links the batch to the
// chain and wakes every idle webhook by closing the channel they wait on.
// It runs on the log's commit goroutine (one at a time, in log order) and
// never blocks: two allocations and three atomic operations per batch,
// however many webhooks there are.
func (m *Manager) committed(b eventlog.Batch) {
	if len(b.Entries) > 0 {
		n := &node{b: b, last: b.Entries[len(b.Entries)-1].ID}
		m.tail.Load().next.Store(n)
		m.tail.Store(n)
	}
	ch := make(chan struct{})
	close(*m.tick.Swap(&ch))
}

func (m *Manager) start(h *hook) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		h.run()
	}()
}

// list returns the webhooks, oldest first.
func (m *Manager) list() []*hook {
	m.mu.Lock()
	hs := make([]*hook, 0, len(m.mu.hooks))
	for _, h := range m.mu.hooks {
		hs = append(hs, h)
	}
	m.mu.Unlock()
	slices.SortFunc(hs, func(a, b *hook) int {
		if a.createdMs != b.createdMs {
			return int(a.createdMs - b.createdMs)
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	return hs
}

func (m *Manager) get(id string) *hook {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.hooks[id]
}

// Errors of the operations, mapped to HTTP answers by the handlers.
var (
	errNotFound = errors.New("webhook: not found")
	errTooMany  = errors.New("webhook: too many webhooks")
	errClosed   = errors.New("webhook: closed")
	errFuture   = errors.New("webhook: after is beyond the last event")
)

// newSecret returns "whsec_" and the base64 of 32 random bytes.
func newSecret() (string, []byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", nil, err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key), key, nil
}

const secretPrefix = "whsec_"

// decodeSecret returns the HMAC key of a stored secret.
func decodeSecret(s string) ([]byte, error) {
	if len(s) <= len(secretPrefix) || s[:len(secretPrefix)] != secretPrefix {
		return nil, errors.New("secret lacks the whsec_ prefix")
	}
	return base64.StdEncoding.DecodeString(s[len(secretPrefix):])
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "wh_" + hex.EncodeToString(b), nil
}

// validID reports whether s has the form of a webhook id.
func validID(s string) bool {
	return len(s) == 3+16 && s[:3] == "wh_" && lowerHex(s[3:])
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// create stores and starts a new webhook; its secret is in the returned
// status only.
func (m *Manager) create(req createRequest) (status, error) {
	secret, _, err := newSecret()
	if err != nil {
		return status{}, err
	}
	id, err := newID()
	if err != nil {
		return status{}, err
	}
	rec := record{
		V: recordVersion, URL: req.u.String(), Types: req.Types, Sources: req.Sources,
		ListMatch: req.ListMatch, PersonName: req.PersonName, Description: req.Description, Secret: secret,
		State: stateActive, CreatedMs: m.opts.Now().UnixMilli(),
	}
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	last := m.opts.Log.LastID()
	cursor := last
	if req.After != nil {
		if *req.After > last {
			return status{}, fmt.Errorf("%w (%d)", errFuture, last)
		}
		cursor = *req.After
	}
	h, err := newHook(m, id, rec, cursor)
	if err != nil {
		return status{}, err
	}
	m.mu.Lock()
	n, closed := len(m.mu.hooks), m.mu.closed
	m.mu.Unlock()
	switch {
	case closed:
		return status{}, errClosed
	case n >= m.opts.MaxWebhooks:
		return status{}, errTooMany
	}
	if m.opts.Shared != nil {
		if err := m.createShared(id, &rec, cursor); err != nil {
			return status{}, err
		}
		if h = m.get(id); h == nil {
			return status{}, errClosed
		}
		m.logger.Info("webhook created", "webhook", id, "url", redactURL(rec.URL), "cursor", cursor)
		st := h.status(m.opts.Log.LastID())
		st.secret = secret
		return st, nil
	}
	err = m.opts.Log.Update(m.ctx, func(tx *eventlog.Tx) error { return writeHook(tx, id, &rec, cursor) })
	if err != nil {
		return status{}, fmt.Errorf("webhook: store: %w", err)
	}
	h.persistedCursor(cursor)
	// Inserted and started under mu, where Close marks the manager
	// closed before it waits for the goroutines: a webhook created
	// while it closes is stored (it runs after the restart), not started.
	m.mu.Lock()
	if !m.mu.closed {
		m.mu.hooks[id] = h
		m.start(h)
	}
	m.mu.Unlock()
	m.logger.Info("webhook created", "webhook", id, "url", redactURL(rec.URL), "cursor", cursor)
	st := h.status(m.opts.Log.LastID())
	st.secret = secret
	return st, nil
}

// remove deletes a webhook: its goroutine stops (an attempt in flight is
// cancelled), its keys and metric series go.
func (m *Manager) remove(id string) error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	h := m.get(id)
	if h == nil {
		return errNotFound
	}
	if m.opts.Shared != nil {
		if err := m.removeShared(id); err != nil {
			return err
		}
		m.logger.Info("webhook deleted", "webhook", id)
		return nil
	}
	if err := m.opts.Log.Update(m.ctx, func(tx *eventlog.Tx) error { return deleteHook(tx, id) }); err != nil {
		return fmt.Errorf("webhook: store: %w", err)
	}
	m.mu.Lock()
	delete(m.mu.hooks, id)
	m.mu.Unlock()
	h.stop()
	m.m.forget(id)
	m.logger.Info("webhook deleted", "webhook", id)
	return nil
}

// change applies fn to webhook id under its lock, persists the
// subscription and the cursor, and, with wake, interrupts the webhook's
// wait or back-off. fn returns the error to answer, if any (nothing is
// then written).
func (m *Manager) change(id string, wake bool, fn func(h *hook) error) (status, error) {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	h := m.get(id)
	if h == nil {
		return status{}, errNotFound
	}
	h.mu.Lock()
	if err := fn(h); err != nil {
		h.mu.Unlock()
		return status{}, err
	}
	rec, cursor := h.recordLocked(), h.mu.cursor
	h.mu.Unlock()
	if err := m.opts.Log.Update(m.ctx, func(tx *eventlog.Tx) error { return writeHook(tx, id, &rec, cursor) }); err != nil {
		return status{}, fmt.Errorf("webhook: store: %w", err)
	}
	h.persistedCursor(cursor)
	if wake {
		h.wake()
	}
	return h.status(m.opts.Log.LastID()), nil
}

// replay moves webhook id's cursor to after (clamped up to just below the
// oldest retained event: those below are gone, not missed).
func (m *Manager) replay(id string, after uint64) (status, error) {
	if m.opts.Shared != nil {
		st := m.opts.Log.State()
		if after > st.Last {
			return status{}, fmt.Errorf("%w (%d)", errFuture, st.Last)
		}
		if st.First > 0 && after < st.First-1 {
			after = st.First - 1
		}
		return m.sharedStatus(id, m.replayShared(id, after))
	}
	return m.change(id, true, func(h *hook) error {
		st := m.opts.Log.State()
		if after > st.Last {
			return fmt.Errorf("%w (%d)", errFuture, st.Last)
		}
		if st.First > 0 && after < st.First-1 {
			after = st.First - 1
		}
		h.mu.cursor = after
		h.resetLocked()
		return nil
	})
}

// enable makes a webhook active again, retrying at once.
func (m *Manager) enable(id string) (status, error) {
	if m.opts.Shared != nil {
		ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
		defer cancel()
		return m.sharedStatus(id, m.changeShared(ctx, id, func(rec *record) error {
			rec.State = stateActive
			rec.Gen++
			return nil
		}))
	}
	return m.change(id, true, func(h *hook) error {
		h.mu.state = stateActive
		h.resetLocked()
		return nil
	})
}

// rotate gives webhook id a new secret, used from its next attempt on.
func (m *Manager) rotate(id string) (status, error) {
	secret, key, err := newSecret()
	if err != nil {
		return status{}, err
	}
	var st status
	if m.opts.Shared != nil {
		ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
		defer cancel()
		st, err = m.sharedStatus(id, m.changeShared(ctx, id, func(rec *record) error {
			rec.Secret = secret
			return nil
		}))
	} else {
		st, err = m.change(id, false, func(h *hook) error {
			h.mu.secret, h.mu.key = secret, key
			return nil
		})
	}
	if err == nil {
		st.secret = secret
		m.logger.Info("webhook secret rotated", "webhook", id)
	}
	return st, err
}

// disable records a 410: the webhook stops until enabled.
func (m *Manager) disable(h *hook, gen uint64, why string) {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	h.mu.Lock()
	if h.mu.gen != gen || h.mu.deleted {
		h.mu.Unlock()
		return
	}
	if m.opts.Shared != nil {
		// Stopped here at once, and everywhere once written.
		h.mu.state = stateDisabled
		h.mu.backoff, h.mu.retryAt = 0, time.Time{}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(m.ctx, sharedOpTimeout)
		defer cancel()
		err := m.changeShared(ctx, h.id, func(rec *record) error {
			rec.State = stateDisabled
			return nil
		})
		if err != nil {
			m.logger.Error("webhook: store the disabled state", "webhook", h.id, "err", err)
			return
		}
		m.logger.Warn("webhook disabled: the receiver answered 410 Gone", "webhook", h.id, "url", redactURL(h.url), "detail", why)
		return
	}
	h.mu.state = stateDisabled
	h.mu.backoff, h.mu.retryAt = 0, time.Time{}
	rec, cursor := h.recordLocked(), h.mu.cursor
	h.mu.Unlock()
	if err := m.opts.Log.Update(m.ctx, func(tx *eventlog.Tx) error { return writeHook(tx, h.id, &rec, cursor) }); err != nil {
		m.logger.Error("webhook: store the disabled state", "webhook", h.id, "err", err)
		return
	}
	h.persistedCursor(cursor)
	m.logger.Warn("webhook disabled: the receiver answered 410 Gone", "webhook", h.id, "url", redactURL(rec.URL), "detail", why)
}

// flusher writes moved cursors every FlushInterval, and once more when
// the manager stops.
func (m *Manager) flusher() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := m.flush(m.ctx); err != nil && m.ctx.Err() == nil {
				m.logger.Error("webhook: persist cursors", "err", err)
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// flush persists every cursor that moved since it was last written, in
// one Update.
func (m *Manager) flush(ctx context.Context) error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	if m.opts.Shared != nil {
		return m.flushShared(ctx)
	}
	type moved struct {
		h      *hook
		cursor uint64
		rec    *record
	}
	var ms []moved
	for _, h := range m.list() {
		h.mu.Lock()
		if !h.mu.deleted && h.mu.cursor != h.mu.persisted {
			mv := moved{h: h, cursor: h.mu.cursor}
			if h.mu.recDirty {
				r := h.recordLocked()
				mv.rec = &r
			}
			ms = append(ms, mv)
		}
		h.mu.Unlock()
	}
	if len(ms) == 0 {
		return nil
	}
	err := m.opts.Log.Update(ctx, func(tx *eventlog.Tx) error {
		for _, mv := range ms {
			if mv.rec != nil {
				if err := writeHook(tx, mv.h.id, mv.rec, mv.cursor); err != nil {
					return err
				}
				continue
			}
			if err := tx.Set(cursorKey(mv.h.id), u64(mv.cursor)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, mv := range ms {
		mv.h.persistedCursor(mv.cursor)
		if mv.rec != nil {
			mv.h.mu.Lock()
			mv.h.mu.recDirty = false
			mv.h.mu.Unlock()
		}
	}
	return nil
}

// Close stops every delivery (attempts in flight are cancelled: their
// events are delivered again after a restart), persists the cursors and
// leaves the commit bus. Call it before the core closes. Idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.mu.closed = true
		m.mu.Unlock()
		m.unsub()
		m.cancel()
		m.wg.Wait()
		// A fresh context: m.ctx is cancelled, the final flush must run.
		m.closeErr = m.flush(context.Background())
		m.client.CloseIdleConnections()
		m.m.unregister()
		m.logger.Info("webhooks stopped")
	})
	return m.closeErr
}

// Health is the /health section: how many webhooks, how many disabled or
// retrying, and the largest lag.
func (m *Manager) Health() any {
	last := m.opts.Log.LastID()
	var out struct {
		Webhooks int    `json:"webhooks"`
		Disabled int    `json:"disabled"`
		Retrying int    `json:"retrying"`
		MaxLag   uint64 `json:"max_lag"`
	}
	for _, h := range m.list() {
		s := h.status(last)
		out.Webhooks++
		switch s.metricState() {
		case stateDisabled:
			out.Disabled++
		case "retrying":
			out.Retrying++
		}
		out.MaxLag = max(out.MaxLag, s.lag)
	}
	return out
}
