package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// A chunk is what one read of the log hands to delivery: at most
// chunkEvents matching events or chunkBytes of request bodies, and at most
// chunkScan records examined, so that a webhook whose filters match little
// still moves its cursor (and its lag) through a long log in steps.
const (
	chunkEvents = 256
	chunkBytes  = 1 << 20
	chunkScan   = 16384
)

// maxMemoryLag is how far behind the newest batch a webhook may follow
// the in-memory chain; further behind it reads the store, so that the
// chain it holds stays short.
const maxMemoryLag = 1 << 16

// maxDrain is how much of an answer's body is read (and dropped) so that
// its connection can be reused; a longer body closes the connection.
const maxDrain = 64 << 10

var userAgent = "SecureVision-Webhooks/" + vocab.Version

// hook is one webhook: its subscription (immutable after creation but
// for the secret and the state), its delivery goroutine and its state.
type hook struct {
	m           *Manager
	id          string
	url         string
	types       [256]bool // by type code
	typeNames   []string  // as given; nil: every detection type
	sources     map[string]struct{}
	sourceNames []string
	listMatch   string
	listPat     []byte // `"blacklist"`: the list_match value to find
	personName  string // "": any person; else only face_match events of this person
	description string
	createdMs   int64

	// wakeCh (capacity 1) interrupts a wait or a back-off after a replay
	// or an enable; ctx is cancelled when the webhook is deleted or the
	// manager closes.
	wakeCh chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	// rctx is the context of the delivery goroutine: ctx on one node; in
	// cluster mode a child of ctx that also ends with the lease term
	// (Manager.Deliver). Written only before the goroutine starts.
	rctx context.Context

	mu struct {
		sync.Mutex
		secret string
		key    []byte
		state  string
		// cursor is the newest id dealt with; persisted is the cursor
		// the store holds.
		cursor, persisted uint64
		// gen changes on every replay and enable: a delivery started in
		// an older generation neither moves the cursor nor retries.
		gen           uint64
		failures      int
		lastError     string
		lastErrorAt   time.Time
		lastSuccessAt time.Time
		retryAt       time.Time
		backoff       time.Duration
		skipped       uint64
		// recDirty: the subscription (skipped) changed since written.
		recDirty bool
		deleted  bool
		// Cluster mode (shared.go): the key-value revisions of the
		// subscription and the cursor last applied, the cursor's replay
		// epoch and the subscription's enable generation.
		rrev, crev, epoch, recGen uint64
	}
}

func newHook(m *Manager, id string, rec record, cursor uint64) (*hook, error) {
	if !validID(id) {
		return nil, fmt.Errorf("bad id")
	}
	if _, err := url.Parse(rec.URL); err != nil {
		return nil, fmt.Errorf("bad url")
	}
	key, err := decodeSecret(rec.Secret)
	if err != nil {
		return nil, fmt.Errorf("bad secret")
	}
	h := &hook{
		m: m, id: id, url: rec.URL, typeNames: rec.Types, sourceNames: rec.Sources,
		listMatch: rec.ListMatch, personName: rec.PersonName, description: rec.Description, createdMs: rec.CreatedMs,
		wakeCh: make(chan struct{}, 1),
	}
	if len(rec.Types) == 0 {
		for c := range h.types {
			h.types[c] = vocab.IsDetection(uint8(c))
		}
	}
	for _, t := range rec.Types {
		c := vocab.TypeCode(t)
		if c == 0 {
			return nil, fmt.Errorf("unknown type %q", t)
		}
		h.types[c] = true
	}
	if len(rec.Sources) > 0 {
		h.sources = make(map[string]struct{}, len(rec.Sources))
		for _, s := range rec.Sources {
			h.sources[s] = struct{}{}
		}
	}
	if rec.ListMatch != "" {
		h.listPat = []byte(strconv.Quote(rec.ListMatch))
	}
	h.mu.secret, h.mu.key, h.mu.state = rec.Secret, key, rec.State
	if h.mu.state != stateDisabled {
		h.mu.state = stateActive
	}
	h.mu.cursor, h.mu.persisted = cursor, cursor
	h.mu.skipped = rec.Skipped
	h.ctx, h.cancel = context.WithCancel(m.ctx)
	h.rctx = h.ctx
	h.mu.recGen = rec.Gen
	return h, nil
}

// recordLocked is the subscription as stored.
func (h *hook) recordLocked() record {
	return record{
		V: recordVersion, URL: h.url, Types: h.typeNames, Sources: h.sourceNames,
		ListMatch: h.listMatch, PersonName: h.personName, Description: h.description, Secret: h.mu.secret,
		State: h.mu.state, CreatedMs: h.createdMs, Skipped: h.mu.skipped, Gen: h.mu.recGen,
	}
}

// resetLocked starts a new generation: failures and back-off are
// forgotten and the goroutine restarts from the cursor.
func (h *hook) resetLocked() {
	h.mu.gen++
	h.mu.failures = 0
	h.mu.backoff, h.mu.retryAt = 0, time.Time{}
}

func (h *hook) persistedCursor(c uint64) {
	h.mu.Lock()
	h.mu.persisted = c
	h.mu.Unlock()
}

func (h *hook) wake() {
	select {
	case h.wakeCh <- struct{}{}:
	default:
	}
}

func (h *hook) stop() {
	h.mu.Lock()
	h.mu.deleted = true
	h.mu.Unlock()
	h.cancel()
}

// status is a snapshot of a webhook for the API, /health and metrics.
type status struct {
	id, url, description     string
	types, sources           []string
	listMatch                string
	personName               string
	state                    string
	cursor, lag, skipped     uint64
	failures                 int
	lastError                string
	lastErrorAt, lastSuccess time.Time
	retryAt                  time.Time
	backoff                  time.Duration
	createdMs                int64
	// secret is set only in the answers to create and rotate.
	secret string
}

func (h *hook) status(last uint64) status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := status{
		id: h.id, url: h.url, description: h.description, types: h.typeNames, sources: h.sourceNames,
		listMatch: h.listMatch, personName: h.personName, state: h.mu.state, cursor: h.mu.cursor, skipped: h.mu.skipped,
		failures: h.mu.failures, lastError: h.mu.lastError, lastErrorAt: h.mu.lastErrorAt,
		lastSuccess: h.mu.lastSuccessAt, retryAt: h.mu.retryAt, backoff: h.mu.backoff, createdMs: h.createdMs,
	}
	if last > s.cursor {
		s.lag = last - s.cursor
	}
	return s
}

// metricState is the state with "retrying" for an active webhook waiting
// out a back-off.
func (s status) metricState() string {
	if s.state == stateActive && s.backoff > 0 {
		return "retrying"
	}
	return s.state
}

// delivery is one event ready to post: its envelope is built once and
// sent as it is on every attempt.
type delivery struct {
	id    uint64
	msgID string
	body  []byte
}

// run is the webhook's goroutine: read a chunk after the cursor, deliver
// it in order, repeat. Once caught up it follows the in-memory chain of
// committed batches (see node) and waits for the commit bus when there
// is nothing new.
func (h *hook) run() {
	logErr := true
	// follow is the chain node whose last id is the cursor, while the
	// webhook reads from memory; nil while it reads the store.
	var follow *node
	for h.rctx.Err() == nil {
		// The tick is taken before the watermark and the chain are read:
		// a batch that commits after the read closes this tick.
		tick := *h.m.tick.Load()
		h.mu.Lock()
		state, cursor, gen := h.mu.state, h.mu.cursor, h.mu.gen
		h.mu.Unlock()
		if state == stateDisabled {
			follow = nil
			h.wait(nil)
			continue
		}
		if follow != nil {
			if follow.last != cursor || h.m.tail.Load().last-cursor > maxMemoryLag {
				follow = nil // replayed, or fallen behind: back to the store
				continue
			}
			n := follow.next.Load()
			if n == nil {
				h.wait(tick)
				continue
			}
			chunk, ok := h.fromMemory(n, cursor)
			if !ok {
				follow = nil
				continue
			}
			follow = n
			if len(chunk) > 0 {
				follow = nil // not held while delivering
				if !h.deliverAll(chunk, gen) {
					continue
				}
			}
			h.advance(gen, n.last)
			continue
		}
		st := h.m.opts.Log.State()
		if st.First > 0 && cursor+1 < st.First {
			h.skip(gen, cursor, st.First-1)
			continue
		}
		if cursor >= st.Last {
			if t := h.m.tail.Load(); t.last == cursor {
				follow = t
				continue
			}
			h.wait(tick)
			continue
		}
		chunk, scanned, err := h.fetch(cursor+1, st.Last)
		if err != nil {
			if logErr && h.rctx.Err() == nil {
				h.m.logger.Error("webhook: read the log", "webhook", h.id, "err", err)
				logErr = false
			}
			h.sleep(h.m.opts.InitialBackoff)
			continue
		}
		logErr = true
		if h.deliverAll(chunk, gen) {
			h.advance(gen, scanned)
		}
	}
}

// deliverAll delivers a chunk in order; false when interrupted (see
// deliver).
func (h *hook) deliverAll(chunk []delivery, gen uint64) bool {
	for i := range chunk {
		if !h.deliver(&chunk[i], gen) {
			return false
		}
	}
	return true
}

// fromMemory returns the deliveries of n's entries after cursor; false
// when n does not continue from cursor (a batch committed before the
// manager subscribed), and the store must be read instead.
func (h *hook) fromMemory(n *node, cursor uint64) ([]delivery, bool) {
	es := n.b.Entries
	if len(es) == 0 || es[0].ID > cursor+1 {
		return nil, false
	}
	var out []delivery
	for i := range es {
		e := &es[i]
		if e.ID <= cursor || !h.types[e.Type] {
			continue
		}
		if h.sources != nil {
			if _, ok := h.sources[e.Source]; !ok {
				continue
			}
		}
		if h.matchList(e.JSON) && h.matchPerson(e.Type, e.JSON) {
			out = append(out, h.build(e.ID, e.Type, e.JSON))
		}
	}
	return out, true
}

// wait blocks until tick is closed (nil: never), the webhook is woken or
// stopped.
func (h *hook) wait(tick chan struct{}) {
	select {
	case <-tick:
	case <-h.wakeCh:
	case <-h.rctx.Done():
	}
}

// sleep waits d; false when woken or stopped first.
func (h *hook) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-h.wakeCh:
	case <-h.rctx.Done():
	}
	return false
}

// skip moves the cursor over ids retention deleted, and counts them.
func (h *hook) skip(gen, from, to uint64) {
	h.mu.Lock()
	if h.mu.gen != gen || h.mu.cursor != from {
		h.mu.Unlock()
		return
	}
	h.mu.cursor = to
	h.mu.skipped += to - from
	h.mu.recDirty = true
	h.mu.Unlock()
	h.m.logger.Warn("webhook: retention deleted events before they were delivered; skipping to the oldest retained",
		"webhook", h.id, "skipped_ids", to-from, "cursor", to)
}

// advance moves the cursor to scanned after a chunk was delivered.
func (h *hook) advance(gen, scanned uint64) {
	h.mu.Lock()
	if h.mu.gen == gen && scanned > h.mu.cursor {
		h.mu.cursor = scanned
	}
	h.mu.Unlock()
}

// fetch reads the records from..to (see chunkEvents), returning the
// matching ones as deliveries and the id up to which every record was
// examined. The iterator is closed before it returns.
func (h *hook) fetch(from, to uint64) ([]delivery, uint64, error) {
	it, err := h.m.opts.Log.NewLogIter(from, to)
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var (
		out  []delivery
		size int
		n    int
	)
	for ok := it.First(); ok; ok = it.Next() {
		id := eventlog.KeyID(it.Key())
		typ, _, src, js, err := eventlog.SplitValue(it.Value())
		if err != nil {
			h.m.logger.Error("webhook: corrupt record not delivered", "webhook", h.id, "id", id, "err", err)
		} else if h.match(typ, src, js) {
			d := h.build(id, typ, js)
			size += len(d.body)
			out = append(out, d)
		}
		n++
		if len(out) >= chunkEvents || size >= chunkBytes || n >= chunkScan {
			return out, id, it.Error()
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	return out, to, nil
}

var listMatchKey = []byte(`"list_match":`)

// match evaluates the filters on a record's header and stored JSON. A
// plate's list_match is the first "list_match" member of its JSON: ingest
// writes it before any extra payload field, and a string value cannot
// hold an unescaped quote.
func (h *hook) match(typ uint8, src, js []byte) bool {
	if !h.types[typ] {
		return false
	}
	if h.sources != nil {
		if _, ok := h.sources[string(src)]; !ok {
			return false
		}
	}
	return h.matchList(js) && h.matchPerson(typ, js)
}

var personNameKey = []byte(`"person_name":`)

// matchPerson evaluates the person_name filter: a face_match whose
// person_name (the first member of its payload, as ingest writes it) is
// the one asked for; "unknown" selects the faces nobody was recognised as.
// It compares the decoded string, so escapes cannot hide a match.
func (h *hook) matchPerson(typ uint8, js []byte) bool {
	if h.personName == "" {
		return true
	}
	if typ != vocab.FaceMatchCode {
		return false
	}
	i := bytes.Index(js, personNameKey)
	if i < 0 {
		return false
	}
	var name string
	dec := json.NewDecoder(bytes.NewReader(js[i+len(personNameKey):]))
	return dec.Decode(&name) == nil && name == h.personName
}

// matchList evaluates the list_match filter on an event's stored JSON.
func (h *hook) matchList(js []byte) bool {
	if h.listPat == nil {
		return true
	}
	i := bytes.Index(js, listMatchKey)
	return i >= 0 && bytes.HasPrefix(js[i+len(listMatchKey):], h.listPat)
}

var createdAtKey = []byte(`"created_at":"`)

// build writes the envelope:
// {"type":"<type>","timestamp":"<created_at>","data":<event JSON>}.
func (h *hook) build(id uint64, typ uint8, js []byte) delivery {
	b := make([]byte, 0, len(js)+96)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, vocab.TypeName(typ))
	b = append(b, `,"timestamp":"`...)
	if i := bytes.Index(js, createdAtKey); i >= 0 {
		rest := js[i+len(createdAtKey):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			b = append(b, rest[:j]...)
		}
	}
	b = append(b, `","data":`...)
	if dec := h.m.opts.Decorate; dec != nil {
		b = dec(b, id, js)
	} else {
		b = append(b, js...)
	}
	b = append(b, '}')
	return delivery{id: id, msgID: "evt_" + strconv.FormatUint(id, 10), body: b}
}

// sign is the Standard Webhooks v1 signature: base64 of HMAC-SHA256 over
// "<msgID>.<ts>.<body>" keyed with the secret's bytes.
func sign(key []byte, msgID string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// deliver posts d until it is accepted (true), or the webhook is
// disabled, replayed, enabled, deleted or stopped (false: the caller
// starts over from the cursor).
func (h *hook) deliver(d *delivery, gen uint64) bool {
	for {
		if d.id < h.m.opts.Log.State().First {
			// Retention deleted it while it was being retried: it is
			// not sent (no read path returns an expired event); the
			// caller counts the ids skipped.
			return false
		}
		select {
		case h.m.sem <- struct{}{}:
		case <-h.wakeCh:
			return false
		case <-h.rctx.Done():
			return false
		}
		res := h.attempt(d)
		<-h.m.sem
		if h.rctx.Err() != nil {
			return false // cancelled: not the receiver's failure
		}
		h.m.m.deliveries.WithLabelValues(h.id, res.outcome).Inc()
		now := h.m.opts.Now()
		h.mu.Lock()
		if h.mu.gen != gen || h.mu.deleted {
			h.mu.Unlock()
			return false
		}
		if res.outcome == outcomeSuccess {
			recovered := h.mu.failures
			h.mu.cursor = d.id
			h.mu.failures = 0
			h.mu.lastSuccessAt = now
			h.mu.backoff, h.mu.retryAt = 0, time.Time{}
			h.mu.Unlock()
			if recovered > 0 {
				h.m.logger.Info("webhook delivering again", "webhook", h.id, "failed_attempts", recovered)
			}
			return true
		}
		h.mu.failures++
		h.mu.lastError, h.mu.lastErrorAt = res.err, now
		if res.outcome == outcomeGone {
			h.mu.Unlock()
			h.m.disable(h, gen, res.err)
			return false
		}
		delay := h.m.backoff(h.mu.failures, res.retryAfter, res.hasRetryAfter)
		h.mu.backoff, h.mu.retryAt = delay, now.Add(delay)
		first := h.mu.failures == 1
		h.mu.Unlock()
		if first {
			h.m.logger.Warn("webhook delivery failed; retrying with back-off", "webhook", h.id,
				"url", redactURL(h.url), "event", d.id, "err", res.err)
		}
		if !h.sleep(delay) {
			return false
		}
	}
}

// result is one attempt's outcome; err is what last_error shows (never
// the URL, whose query may hold a token).
type result struct {
	outcome       string
	err           string
	retryAfter    time.Duration
	hasRetryAfter bool
}

// attempt posts d once, signed with the current secret and this
// attempt's time.
func (h *hook) attempt(d *delivery) result {
	h.mu.Lock()
	key := h.mu.key
	h.mu.Unlock()
	now := h.m.opts.Now()
	ts := now.Unix()
	ctx, cancel := context.WithTimeout(h.rctx, h.m.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(d.body))
	if err != nil {
		return result{outcome: outcomeNetwork, err: "invalid request"}
	}
	req.Header = http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        {userAgent},
		"Webhook-Id":        {d.msgID},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
		"Webhook-Signature": {sign(key, d.msgID, ts, d.body)},
	}
	start := time.Now()
	resp, err := h.m.client.Do(req)
	h.m.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		var ue *url.Error
		msg := err.Error()
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		switch {
		case errors.Is(err, ErrRefused):
			return result{outcome: outcomeRefused, err: msg}
		case errors.Is(err, context.DeadlineExceeded):
			return result{outcome: outcomeTimeout, err: "no answer within " + h.m.opts.Timeout.String()}
		}
		return result{outcome: outcomeNetwork, err: msg}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return result{outcome: outcomeSuccess}
	case code == http.StatusGone:
		return result{outcome: outcomeGone, err: "HTTP 410 Gone"}
	}
	r := result{outcome: outcomeHTTP, err: "HTTP " + strconv.Itoa(code)}
	if t := http.StatusText(code); t != "" {
		r.err += " " + t
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		r.retryAfter, r.hasRetryAfter = parseRetryAfter(v, h.m.opts.Now())
	}
	return r
}

// parseRetryAfter reads Retry-After: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the delay before retry number `failures`: a receiver's
// Retry-After as given (at least min(1 s, InitialBackoff), at most
// MaxRetryAfter), else InitialBackoff doubled per failure up to
// MaxBackoff, with "equal jitter": a uniform pick in [d/2, d], so that
// webhooks that failed together do not retry together.
func (m *Manager) backoff(failures int, retryAfter time.Duration, hasRetryAfter bool) time.Duration {
	if hasRetryAfter {
		return min(max(retryAfter, min(time.Second, m.opts.InitialBackoff)), MaxRetryAfter)
	}
	d := m.opts.InitialBackoff
	for i := 1; i < failures && d < m.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// redactURL is a URL as logs may show it: no user information, no query
// (either may hold a credential), no fragment.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.RawQuery != ""
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	out := u.String()
	if q {
		out += "?…"
	}
	return out
}
