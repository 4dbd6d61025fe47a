package mqtt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/valyala/fastjson"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Store keys of the publisher's state (the log's 'C' family, see doc.go).
var (
	cursorKey       = []byte("Cmqtt/cursor")
	cameraKeyPrefix = []byte("Cmqtt/camera/")
	// cameraKeyEnd is the first key after every camera key ('/' + 1).
	cameraKeyEnd = []byte("Cmqtt/camera0")
)

// Publisher publishes the log's detection events to an MQTT broker from a
// durable cursor. New builds it, Start loads its state and starts it,
// Notify (subscribed to the commit bus) wakes it, Stop ends it. Its
// methods are safe for concurrent use.
type Publisher struct {
	opts   Options
	broker Broker
	logger *slog.Logger
	m      *metrics

	topicEvents, topicAvailable, topicHAStatus string

	wake     chan struct{} // Notify → loop (non-blocking send)
	haOnline chan struct{} // Home Assistant's "online" → loop
	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
	// unregisterOnce: Stop removes the metrics, so that the next
	// publisher (cluster mode: one per lease term) can register them.
	unregisterOnce sync.Once
	started        atomic.Bool
	done           chan struct{} // closed when the loop has ended
	flushed        chan struct{} // closed when the flusher has ended

	// cursor is the id up to which every event is acknowledged by the
	// broker (or needs no publication); persisted is the cursor last
	// written to the store.
	cursor    atomic.Uint64
	persisted atomic.Uint64
	connected atomic.Bool

	mu struct {
		sync.Mutex
		lastErr string
		// newCams are cameras first seen and not yet written to the store.
		newCams []string
	}

	// Owned by the loop goroutine (and by Start before it runs).
	cams        map[string]*camera
	capWarned   bool
	nextAlertMs int64 // earliest alertUntil among cams; 0: none
}

// camera is one frame_source_id with its topics.
type camera struct {
	id, esc string
	// state is the retained latest-event topic per type code.
	state [vocab.MaxTypeCode + 1]string
	alert string
	// alertUntil is when the watchlist alert turns off (Unix ms); 0: off.
	alertUntil int64
}

// New checks o and builds a publisher; Start starts it.
func New(o Options) (*Publisher, error) {
	o, b, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		opts: o, broker: b, logger: o.Logger,
		topicEvents:    o.TopicPrefix + "/events",
		topicAvailable: o.TopicPrefix + "/available",
		wake:           make(chan struct{}, 1),
		haOnline:       make(chan struct{}, 1),
		stop:           make(chan struct{}),
		done:           make(chan struct{}),
		flushed:        make(chan struct{}),
		cams:           map[string]*camera{},
	}
	if o.DiscoveryPrefix != "" {
		p.topicHAStatus = o.DiscoveryPrefix + "/status"
	}
	p.m = newMetrics(o.Registerer, p)
	return p, nil
}

func (p *Publisher) newCamera(id string) *camera {
	c := &camera{id: id, esc: EscapeID(id)}
	base := p.opts.TopicPrefix + "/" + c.esc + "/"
	for code := uint8(1); code <= vocab.MaxTypeCode; code++ {
		c.state[code] = base + vocab.TypeName(code)
	}
	c.alert = base + objWatchlistAlert
	return c
}

// Start reads the cursor and the known cameras from the store and starts
// publishing. A store without a cursor (MQTT newly configured) starts
// after the newest event: the history is not replayed to the broker. The
// broker need not be reachable: the publisher connects, and reconnects,
// in the background.
func (p *Publisher) Start() error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("mqtt: started twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	var cursor uint64
	var cams []string
	err := p.opts.Log.Update(ctx, func(tx *eventlog.Tx) error {
		v, err := tx.Get(cursorKey)
		switch {
		case errors.Is(err, eventlog.ErrNotFound):
			cursor = tx.State().Last
			if err := tx.Set(cursorKey, binary.BigEndian.AppendUint64(nil, cursor)); err != nil {
				return err
			}
		case err != nil:
			return err
		case len(v) != 8:
			return fmt.Errorf("%w: %s holds %d bytes", eventlog.ErrCorrupt, cursorKey, len(v))
		default:
			cursor = binary.BigEndian.Uint64(v)
		}
		it, err := tx.NewIter(cameraKeyPrefix, cameraKeyEnd)
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			cams = append(cams, string(it.Key()[len(cameraKeyPrefix):]))
		}
		return errors.Join(it.Error(), it.Close())
	})
	if err == nil && p.opts.Cursor != nil {
		// Cluster mode: the shared cursor, not this node's.
		var ok bool
		cursor, ok, err = p.opts.Cursor.Load(ctx)
		if err == nil && !ok {
			cursor = p.opts.Log.LastID()
			err = p.opts.Cursor.Store(ctx, cursor)
		}
	}
	if err != nil {
		close(p.done)
		close(p.flushed)
		p.m.unregister()
		return fmt.Errorf("mqtt: read cursor: %w", err)
	}
	p.cursor.Store(cursor)
	p.persisted.Store(cursor)
	for _, id := range cams {
		if len(p.cams) < p.opts.MaxCameras {
			p.cams[id] = p.newCamera(id)
		}
	}
	p.logger.Info("mqtt publisher starting", "broker", p.broker.Host, "cursor", cursor,
		"lag", p.lag(), "cameras", len(p.cams), "discovery", p.opts.DiscoveryPrefix != "")
	go p.run()
	go p.flusher()
	return nil
}

// Notify is the commit bus subscriber: it wakes the publisher and returns
// at once (it runs on the log's commit goroutine).
func (p *Publisher) Notify(eventlog.Batch) {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stop stops publishing: it waits (a bounded time) for the broker to
// acknowledge what is in flight, publishes "offline", disconnects and
// writes the final cursor. Call it before the log is closed. What was not
// acknowledged is published again after the next Start. Stop is
// idempotent; ctx bounds the wait.
func (p *Publisher) Stop(ctx context.Context) error {
	if !p.started.Load() {
		return nil
	}
	defer p.unregisterOnce.Do(p.m.unregister)
	p.stopOnce.Do(func() { close(p.stop) })
	for _, ch := range []chan struct{}{p.done, p.flushed} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mqtt: stop: %w", ctx.Err())
		}
	}
	return p.flush(ctx)
}

// Health is the /health member: whether the broker connection is up, the
// cursor and the lag (newest id − cursor), and the last connection or
// publication error while disconnected.
type Health struct {
	Connected bool   `json:"connected"`
	Cursor    uint64 `json:"cursor"`
	Lag       uint64 `json:"lag"`
	LastError string `json:"last_error,omitempty"`
}

// Health reports the publisher's state; it does not block.
func (p *Publisher) Health() Health {
	h := Health{Connected: p.connected.Load(), Cursor: p.cursor.Load(), Lag: p.lag()}
	if !h.Connected {
		p.mu.Lock()
		h.LastError = p.mu.lastErr
		p.mu.Unlock()
	}
	return h
}

func (p *Publisher) lag() uint64 {
	last, c := p.opts.Log.LastID(), p.cursor.Load()
	if last <= c {
		return 0
	}
	return last - c
}

func (p *Publisher) setErr(err error) {
	p.mu.Lock()
	p.mu.lastErr = err.Error()
	p.mu.Unlock()
}

// flusher persists the cursor every FlushInterval until Stop.
func (p *Publisher) flusher() {
	defer close(p.flushed)
	t := time.NewTicker(p.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
			if err := p.flush(ctx); err != nil {
				p.logger.Error("mqtt: persist cursor", "err", err)
			}
			cancel()
		}
	}
}

// flush writes the cursor, when it moved, and the cameras first seen
// since the last flush, in one update of the log.
func (p *Publisher) flush(ctx context.Context) error {
	c := p.cursor.Load()
	p.mu.Lock()
	cams := p.mu.newCams
	p.mu.newCams = nil
	p.mu.Unlock()
	if c == p.persisted.Load() && len(cams) == 0 {
		return nil
	}
	var err error
	if p.opts.Cursor != nil && c != p.persisted.Load() {
		err = p.opts.Cursor.Store(ctx, c)
	}
	if err == nil {
		err = p.opts.Log.Update(ctx, func(tx *eventlog.Tx) error {
			if p.opts.Cursor == nil {
				if err := tx.Set(cursorKey, binary.BigEndian.AppendUint64(nil, c)); err != nil {
					return err
				}
			}
			return p.setCamerasTx(tx, cams)
		})
	}
	if err != nil {
		p.mu.Lock()
		p.mu.newCams = append(cams, p.mu.newCams...)
		p.mu.Unlock()
		p.m.persistErrors.Inc()
		return err
	}
	p.persisted.Store(c)
	return nil
}

// setCamerasTx records the cameras first seen in tx.
func (p *Publisher) setCamerasTx(tx *eventlog.Tx, cams []string) error {
	for _, id := range cams {
		if err := tx.Set(append(bytes.Clone(cameraKeyPrefix), id...), nil); err != nil {
			return err
		}
	}
	return nil
}

// run is the loop: connect, publish until the connection ends, back off,
// reconnect; until Stop.
func (p *Publisher) run() {
	defer close(p.done)
	backoff := minBackoff
	failures := 0
	for connects := 0; ; {
		cli, lost, err := p.connect()
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			p.setErr(err)
			p.m.connectErrors.Inc()
			if failures == 0 {
				p.logger.Warn("mqtt: cannot connect; retrying in the background", "broker", p.broker.Host, "err", err)
			} else {
				p.logger.Debug("mqtt: connect failed", "broker", p.broker.Host, "err", err, "attempt", failures+1)
			}
			failures++
			t := time.NewTimer(backoff)
			select {
			case <-p.stop:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if connects > 0 {
			p.m.reconnects.Inc()
		}
		connects++
		failures, backoff = 0, minBackoff
		p.connected.Store(true)
		p.logger.Info("mqtt: connected", "broker", p.broker.Host, "cursor", p.cursor.Load(), "lag", p.lag())
		s := &session{p: p, cli: cli, lost: lost}
		stopped, err := s.run()
		p.connected.Store(false)
		if err != nil {
			p.setErr(err)
		}
		if stopped {
			p.logger.Info("mqtt: disconnected", "cursor", p.cursor.Load())
			return
		}
		p.logger.Warn("mqtt: connection lost; reconnecting", "broker", p.broker.Host, "err", err, "cursor", p.cursor.Load())
	}
}

var (
	errStopped = errors.New("mqtt: stopped")
	errAckFail = errors.New("mqtt: a publication was not acknowledged")
)

// connect opens one connection with a clean session. The client does not
// reconnect by itself: run does, and publishes again from the cursor, so
// every token of a lost connection completes (with an error) and no
// publication is resent behind our back.
func (p *Publisher) connect() (paho.Client, <-chan error, error) {
	lost := make(chan error, 1)
	o := paho.NewClientOptions().
		AddBroker(p.broker.Server).
		SetClientID(p.opts.ClientID).
		SetUsername(p.opts.Username).
		SetPassword(p.opts.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, no fallback to 3.1
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(pingTimeout).
		SetBinaryWill(p.topicAvailable, []byte(payloadOffline), 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if p.broker.TLS {
		o.SetTLSConfig(p.opts.TLS)
	}
	cli := paho.NewClient(o)
	t := cli.Connect()
	select {
	case <-t.Done():
	case <-p.stop:
		go func() { <-t.Done(); cli.Disconnect(0) }()
		return nil, nil, errStopped
	}
	if err := t.Error(); err != nil {
		return nil, nil, err
	}
	return cli, lost, nil
}

// entry is a group of publications whose PUBACKs advance the cursor to
// upTo (0: to nowhere) once all of them, and all before them, arrived.
type entry struct {
	upTo   uint64
	events int // detection events on the firehose
	tokens []paho.Token
}

// session is one connection's publishing.
type session struct {
	p    *Publisher
	cli  paho.Client
	lost <-chan error

	pending chan entry    // → acker, in publication order; its size is the window
	abort   chan struct{} // closed when the connection is gone
	ackFail chan struct{} // acker → session: a publication failed
	ackDone chan struct{} // closed by the acker when it has ended
	tokens  []paho.Token  // the entry being built
}

// run publishes until the connection is lost (stopped false, err why) or
// Stop is called (stopped true).
func (s *session) run() (stopped bool, err error) {
	p := s.p
	s.pending = make(chan entry, windowChunks)
	s.abort = make(chan struct{})
	s.ackFail = make(chan struct{}, 1)
	s.ackDone = make(chan struct{})
	go s.acker()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	resetTimer := func() {
		if p.nextAlertMs != 0 {
			timer.Reset(time.Duration(p.nextAlertMs-p.opts.Now().UnixMilli()) * time.Millisecond)
		}
	}

	s.tokens = append(s.tokens, s.cli.Publish(p.topicAvailable, 1, true, []byte(payloadOnline)))
	if p.topicHAStatus != "" {
		t := s.cli.Subscribe(p.topicHAStatus, 1, func(_ paho.Client, m paho.Message) {
			if string(m.Payload()) == payloadOnline {
				select {
				case p.haOnline <- struct{}{}:
				default:
				}
			}
		})
		s.tokens = append(s.tokens, t)
	}
	s.announceAll()
	if err := s.send(entry{}); err != nil {
		return s.end(err)
	}
	resetTimer()

	next := p.cursor.Load() + 1
	for {
		// With records to read, the select does not wait (ready is
		// closed) but still takes a stop, a lost connection or an
		// announcement first when one is there; without, it waits for
		// Notify too.
		var wake, ready <-chan struct{}
		last := p.opts.Log.LastID()
		if next <= last {
			ready = closedChan
		} else {
			wake = p.wake
		}
		var err error
		select {
		case <-p.stop:
			err = errStopped
		case err = <-s.lost:
		case <-s.ackFail:
			err = errAckFail
		case <-p.haOnline:
			s.announceAll()
			err = s.send(entry{})
		case <-timer.C:
			s.alertsOff()
			err = s.send(entry{})
			resetTimer()
		case <-wake:
		case <-ready:
			var on bool
			if next, on, err = s.chunk(next, last); on {
				resetTimer()
			}
		}
		if err != nil {
			return s.end(err)
		}
	}
}

// closedChan is always ready.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// end closes the session. On Stop it waits a bounded time for the
// PUBACKs in flight, then publishes "offline" and disconnects; on a lost
// connection it lets the acker fail what is left.
func (s *session) end(why error) (stopped bool, err error) {
	p := s.p
	close(s.pending)
	if errors.Is(why, errStopped) {
		t := time.NewTimer(drainTimeout)
		select {
		case <-s.ackDone:
		case <-t.C:
		}
		t.Stop()
		close(s.abort)
		<-s.ackDone
		off := s.cli.Publish(p.topicAvailable, 1, true, []byte(payloadOffline))
		off.WaitTimeout(time.Second)
		// 250 ms for the client to finish what it is writing.
		s.cli.Disconnect(250)
		return true, nil
	}
	close(s.abort)
	<-s.ackDone
	s.cli.Disconnect(0)
	if why == nil {
		why = errors.New("connection lost")
	}
	return false, why
}

// send hands the entry built so far (s.tokens) to the acker, waiting
// while the window is full.
func (s *session) send(e entry) error {
	e.tokens, s.tokens = s.tokens, nil
	select {
	case s.pending <- e:
		return nil
	case <-s.p.stop:
		return errStopped
	case err := <-s.lost:
		return err
	case <-s.ackFail:
		return errAckFail
	}
}

// acker waits for the PUBACKs of each entry in order and advances the
// cursor. After a failure nothing later counts: the session reconnects
// and publishes again from the cursor.
func (s *session) acker() {
	defer close(s.ackDone)
	p := s.p
	failed := false
	for e := range s.pending {
		ok := !failed
		for _, t := range e.tokens {
			if !ok {
				break
			}
			if err := waitToken(t, s.abort); err != nil {
				ok = false
				p.setErr(err)
			}
		}
		if !ok {
			if !failed {
				failed = true
				select {
				case s.ackFail <- struct{}{}:
				default:
				}
			}
			p.m.failed.Add(float64(e.events))
			continue
		}
		p.m.acked.Add(float64(e.events))
		if e.upTo > 0 {
			p.cursor.Store(e.upTo)
		}
	}
}

// waitToken waits for t, or until abort; an aborted wait is a failure
// unless the token completed.
func waitToken(t paho.Token, abort <-chan struct{}) error {
	select {
	case <-t.Done():
	case <-abort:
		select {
		case <-t.Done():
		default:
			return errors.New("mqtt: connection closed before the PUBACK")
		}
	}
	return t.Error()
}

// chunk publishes the records with ids in [next, min(last, next+chunkEvents-1)]:
// each detection on the firehose in id order, then the latest event of
// each camera and type to its retained topic, then the alerts it turned
// on. It returns the next id to read and whether an alert turned on.
func (s *session) chunk(next, last uint64) (uint64, bool, error) {
	p := s.p
	if first := p.opts.Log.State().First; first > next {
		// Retention deleted events before they were published.
		gap := min(first, last+1) - next
		p.m.skipped.Add(float64(gap))
		p.logger.Warn("mqtt: retention deleted events before they were published; skipping them",
			"from_id", next, "count", gap)
		next += gap
		if next > last {
			return next, false, s.send(entry{upTo: last})
		}
	}
	hi := min(last, next+chunkEvents-1)
	it, err := p.opts.Log.NewLogIter(next, hi)
	if err != nil {
		return next, false, err
	}
	var (
		slab   []byte
		events int
		latest = map[string][]byte{}
		order  []string
		alerts []*camera
	)
	now := p.opts.Now().UnixMilli()
	delay := p.opts.AlertOffDelay.Milliseconds()
	for it.First(); it.Valid(); it.Next() {
		id := eventlog.KeyID(it.Key())
		typ, ts, src, js, err := eventlog.SplitValue(it.Value())
		if err != nil {
			p.m.corrupt.Inc()
			p.logger.Error("mqtt: skipping a record that does not decode", "id", id, "err", err)
			continue
		}
		if !vocab.IsDetection(typ) {
			continue
		}
		start := len(slab)
		if p.opts.Decorate != nil {
			slab = p.opts.Decorate(slab, id, js)
		} else {
			slab = append(slab, js...)
		}
		// A full slice expression: the payload is the client's until its
		// PUBACK, and later appends to slab must not reach it.
		payload := slab[start:len(slab):len(slab)]
		s.tokens = append(s.tokens, s.cli.Publish(p.topicEvents, 1, false, payload))
		events++

		cam := s.camera(src)
		var topic string
		if cam != nil {
			topic = cam.state[typ]
		} else {
			topic = p.opts.TopicPrefix + "/" + EscapeID(string(src)) + "/" + vocab.TypeName(typ)
		}
		if _, ok := latest[topic]; !ok {
			order = append(order, topic)
		}
		latest[topic] = payload
		if cam != nil && typ == vocab.PlateReadCode && blacklisted(payload) {
			// The alert lasts from the capture (not later than now: a
			// camera clock ahead of ours must not stretch it) for the
			// delay; a replayed old read turns nothing on.
			if until := min(ts, now) + delay; until > now && until > cam.alertUntil {
				if cam.alertUntil == 0 {
					alerts = append(alerts, cam)
				}
				cam.alertUntil = until
				if p.nextAlertMs == 0 || until < p.nextAlertMs {
					p.nextAlertMs = until
				}
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return next, false, err
	}
	for _, topic := range order {
		s.tokens = append(s.tokens, s.cli.Publish(topic, 1, true, latest[topic]))
	}
	for _, cam := range alerts {
		s.tokens = append(s.tokens, s.cli.Publish(cam.alert, 1, true, []byte(payloadOn)))
	}
	return hi + 1, len(alerts) > 0, s.send(entry{upTo: hi, events: events})
}

// blacklisted reports whether an event's payload.list_match is
// "blacklist". The substring test skips the parse for almost every read.
func blacklisted(event []byte) bool {
	if !bytes.Contains(event, []byte(`"`+vocab.Blacklist+`"`)) {
		return false
	}
	return fastjson.GetString(event, "payload", "list_match") == vocab.Blacklist
}

// camera returns the camera of src, registering (and announcing) it the
// first time; nil when MaxCameras are known already.
func (s *session) camera(src []byte) *camera {
	p := s.p
	if c, ok := p.cams[string(src)]; ok {
		return c
	}
	if len(p.cams) >= p.opts.MaxCameras {
		if !p.capWarned {
			p.capWarned = true
			p.logger.Warn("mqtt: camera limit reached: further cameras get no discovery and no alert",
				"max_cameras", p.opts.MaxCameras)
		}
		p.m.overLimit.Inc()
		return nil
	}
	c := p.newCamera(string(src))
	p.cams[c.id] = c
	p.mu.Lock()
	p.mu.newCams = append(p.mu.newCams, c.id)
	p.mu.Unlock()
	s.announce(c)
	return c
}

// announce publishes a camera's discovery configs (when discovery is on)
// and its alert state.
func (s *session) announce(c *camera) {
	p := s.p
	if p.opts.DiscoveryPrefix != "" {
		for _, m := range p.discoveryMessages(c) {
			s.tokens = append(s.tokens, s.cli.Publish(m.topic, 1, true, m.payload))
		}
	}
	state := payloadOff
	if c.alertUntil > p.opts.Now().UnixMilli() {
		state = payloadOn
	}
	s.tokens = append(s.tokens, s.cli.Publish(c.alert, 1, true, []byte(state)))
}

// announceAll announces every known camera: on each connection (the
// broker may have lost its retained messages) and when Home Assistant
// says it is online.
func (s *session) announceAll() {
	for _, c := range s.p.cams {
		s.announce(c)
	}
}

// alertsOff turns off the alerts whose time is up.
func (s *session) alertsOff() {
	p := s.p
	now := p.opts.Now().UnixMilli()
	p.nextAlertMs = 0
	for _, c := range p.cams {
		switch {
		case c.alertUntil == 0:
		case c.alertUntil <= now:
			c.alertUntil = 0
			s.tokens = append(s.tokens, s.cli.Publish(c.alert, 1, true, []byte(payloadOff)))
		case p.nextAlertMs == 0 || c.alertUntil < p.nextAlertMs:
			p.nextAlertMs = c.alertUntil
		}
	}
}
