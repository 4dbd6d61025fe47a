package wsfanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
)

// Hub fans the committed log out to WebSocket clients. Create it with New,
// feed it from the log's OnCommit hook with Publish and serve it at
// GET /stream (it is an http.Handler).
type Hub struct {
	opts     Options
	log      LogReader
	logger   *slog.Logger
	m        *hubMetrics
	upgrader *gws.Upgrader

	// active counts the connections that hold a slot: from the moment
	// ServeHTTP admits an upgrade until unregister (or a failed upgrade)
	// gives the slot back. It is the one count of clients: the MaxClients
	// cap, Clients (/health ws_clients) and the clients gauge all read it,
	// so a client seen to leave has freed its slot. (A second count of
	// registered streams, read by Clients, let a test see a client leave
	// while another was still upgrading, and the next dial raced them.)
	// closing is mu.closing readable without the lock: ServeHTTP refuses
	// new connections early with it, register decides under mu.
	active  atomic.Int64
	closing atomic.Bool
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		// subs receive published batches; c.idx is the position in subs.
		subs []*client
		// conns is every connection with running goroutines (subs plus
		// disabled ones being closed), for Shutdown.
		conns   map[*client]struct{}
		closing bool
	}
}

// New creates a hub.
func New(opts Options) (*Hub, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{opts: opts, log: opts.Log, logger: opts.Logger}
	h.m = newHubMetrics(opts.Registerer, h.active.Load)
	h.mu.conns = make(map[*client]struct{})
	h.upgrader = gws.NewUpgrader(&handler{h: h}, &gws.ServerOption{
		ReadMaxPayloadSize: opts.MaxMessageBytes,
		// Clients send text; invalid UTF-8 is closed with 1007 by gws.
		CheckUtf8Enabled: true,
		Logger:           gwsLogger{opts.Logger},
		// No recovery inside gws: a panic in a callback unwinds to
		// client.read, which counts it and closes the connection.
		Recovery:   func(gws.Logger) {},
		NewSession: func() gws.SessionStorage { return &slot{} },
	})
	return h, nil
}

// Clients returns the number of stream connections that hold a slot,
// upgrading ones included (/health ws_clients).
func (h *Hub) Clients() int { return int(h.active.Load()) }

// batch is one published group of entries, shared by every client queue.
type batch struct {
	entries     []eventlog.Entry
	first, last uint64
	// types has bit t set when an entry of type code t is present.
	types uint32
	// sources maps each source of the batch to the type bits of its
	// entries; see sourceTypes.
	sources map[string]uint32
}

// sourceTypes builds sources on first use: a batch that no
// source-filtered client sees costs nothing. Only Publish's goroutine
// calls it (through push, under Hub.mu); writers never read the map.
func (b *batch) sourceTypes() map[string]uint32 {
	if b.sources == nil {
		b.sources = make(map[string]uint32, 8)
		for i := range b.entries {
			b.sources[b.entries[i].Source] |= 1 << (b.entries[i].Type & 31)
		}
	}
	return b.sources
}

// Publish hands a committed batch to every client. It is called from the
// log's OnCommit hook, in log order, and never blocks on a client: it only
// appends a pointer to each client's bounded queue (see doc.go).
func (h *Hub) Publish(b eventlog.Batch) {
	if len(b.Entries) == 0 {
		return
	}
	bt := &batch{entries: b.Entries, first: b.Entries[0].ID, last: b.Entries[len(b.Entries)-1].ID}
	for i := range b.Entries {
		bt.types |= 1 << (b.Entries[i].Type & 31)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.mu.subs {
		c.push(bt)
	}
}

// Shutdown sends close 1001 "server shutting down" to every client and
// waits until their connections ended, or ctx is done (then the rest are
// closed abruptly and ctx's error is returned). New connections are refused
// from the first call on. It may be called more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.mu.Lock()
	h.mu.closing = true
	cs := make([]*client, 0, len(h.mu.conns))
	for c := range h.mu.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.requestClose(CloseGoingAway, "server shutting down", reasonShutdown)
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		// A connection still upgrading when closing began was not in
		// conns: it registers, sees closing and closes itself. Its slot
		// is part of Clients, so wait for it too: once Shutdown returns,
		// no connection holds a slot. Upgrades in flight are few and
		// short, so polling costs nothing.
		for h.active.Load() > 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
		if ctx.Err() == nil {
			h.logger.Info("stream clients closed", "clients", len(cs))
			return nil
		}
	case <-ctx.Done():
	}
	h.mu.Lock()
	for c := range h.mu.conns {
		c.conn.markClosed()
		_ = c.conn.Close()
	}
	n := len(h.mu.conns)
	h.mu.Unlock()
	h.logger.Warn("stream shutdown timed out; connections closed abruptly", "clients", n)
	return fmt.Errorf("wsfanout: shutdown: %w", ctx.Err())
}

// params are the query parameters of /stream.
type params struct {
	f        filter
	after    uint64
	hasAfter bool
}

// parseParams validates after, type and source (token is the auth layer's)
// as GET /events does, with the same code: a repeated parameter counts by
// its last value, as FastAPI does with scalars, and a source longer than
// any frame_source_id can be is refused.
func parseParams(r *http.Request) (params, []vocab.FieldError) {
	var p params
	q := httpx.Query{Values: r.URL.Query()}
	if n, ok := q.Int("after", 0); ok {
		p.after, p.hasAfter = uint64(n), true
	}
	p.f.types = typeFilter(q.Type())
	p.f.source, p.f.hasSource = q.Source()
	return p, q.Errs
}

// ServeHTTP is GET /stream: it validates the query (422), applies the
// connection cap (503), upgrades and starts the client's goroutines. The
// caller has already checked the token.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, errs := parseParams(r)
	if len(errs) > 0 {
		h.m.refused.WithLabelValues(refusedBadRequest).Inc()
		httpx.WriteValidation(w, errs)
		return
	}
	if h.closing.Load() {
		h.m.refused.WithLabelValues(refusedShutdown).Inc()
		w.Header().Set("Retry-After", "5")
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	if !isUpgrade(r) {
		h.m.refused.WithLabelValues(refusedBadRequest).Inc()
		httpx.WriteDetail(w, http.StatusBadRequest, "WebSocket upgrade required")
		return
	}
	if h.active.Add(1) > int64(h.opts.MaxClients) {
		h.active.Add(-1)
		h.m.refused.WithLabelValues(refusedMaxClients).Inc()
		w.Header().Set("Retry-After", "5")
		httpx.WriteDetail(w, http.StatusServiceUnavailable, fmt.Sprintf("too many stream clients (limit %d)", h.opts.MaxClients))
		return
	}
	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.active.Add(-1)
		h.logger.Error("stream: hijack failed", "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	started := false
	defer h.recoverUpgrade(netConn, &started)
	if h.opts.SendBuffer > 0 {
		if tc, ok := netConn.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(h.opts.SendBuffer)
		}
	}
	wc := &wsConn{Conn: netConn}
	// gws parses from brw.Reader, which from now on reads through the
	// guard: no frame header reaches gws unchecked.
	var guard *frameGuard
	if hk := h.opts.hooks; hk == nil || !hk.unguarded {
		guard = newFrameGuard(netConn, brw.Reader, h.opts.MaxMessageBytes)
	}
	socket, err := h.upgrader.UpgradeFromConn(wc, brw.Reader, r)
	if err != nil {
		// gws answered 400 and closed the connection.
		h.active.Add(-1)
		h.m.refused.WithLabelValues(refusedBadRequest).Inc()
		return
	}
	if hk := h.opts.hooks; hk != nil && hk.upgraded != nil {
		hk.upgraded()
	}
	c := newClient(h, wc, socket, p)
	if guard != nil {
		guard.refuse = c.refuseFrame
	}
	socket.Session().Store("", c)
	if !h.register(c) {
		// Shutdown began during the upgrade: say so and hang up.
		buf := appendCloseFrame(nil, CloseGoingAway, "server shutting down")
		_, _ = wc.writeChunk(buf, time.Now().Add(time.Second), true)
		_ = wc.Close()
		h.active.Add(-1)
		h.m.disconnects.WithLabelValues(reasonShutdown).Inc()
		return
	}
	started = true
	go c.read()
	go c.run()
}

// recoverUpgrade ends a hijacked connection whose upgrade panicked before
// its goroutines started (net/http would recover the panic but leave the
// hijacked socket open and the connection slot taken).
func (h *Hub) recoverUpgrade(conn net.Conn, started *bool) {
	if *started {
		return
	}
	v := recover()
	if v == nil {
		return
	}
	h.m.panics.Inc()
	h.logger.Error("stream: panic during the upgrade; connection closed",
		"panic", v, "remote", conn.RemoteAddr().String(), "stack", string(debug.Stack()))
	_ = conn.Close()
	h.active.Add(-1)
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// register adds c to the hub (to the publish list unless the stream is
// disabled) and sets its starting cursor. It reports false when the hub is
// shutting down.
func (h *Hub) register(c *client) bool {
	h.mu.Lock()
	if h.mu.closing {
		h.mu.Unlock()
		return false
	}
	h.wg.Add(2)
	h.mu.conns[c] = struct{}{}
	if c.disabled {
		h.mu.Unlock()
		return true
	}
	c.idx = len(h.mu.subs)
	h.mu.subs = append(h.mu.subs, c)
	h.mu.Unlock()
	// Read after the client is in subs: every batch published without it
	// has ids <= this watermark (the log advances the watermark before
	// publishing), so the cursor or the first catch-up covers it.
	if !c.hasAfter {
		c.cursor = h.log.LastID()
	}
	return true
}

// unregister removes c (once) and counts its disconnect.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	if _, ok := h.mu.conns[c]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.mu.conns, c)
	if !c.disabled {
		last := len(h.mu.subs) - 1
		moved := h.mu.subs[last]
		h.mu.subs[c.idx] = moved
		moved.idx = c.idx
		h.mu.subs[last] = nil
		h.mu.subs = h.mu.subs[:last]
	}
	h.mu.Unlock()
	h.active.Add(-1)
	reason := c.reason()
	h.m.disconnects.WithLabelValues(reason).Inc()
	if reason != reasonClientClosed && reason != reasonShutdown && reason != reasonDisabled {
		h.logger.Info("stream client disconnected", "reason", reason, "remote", c.conn.RemoteAddr().String(), "cursor", c.cursorSeen.Load())
	}
}

// handler adapts gws callbacks to clients.
type handler struct{ h *Hub }

func clientOf(s *gws.Conn) *client {
	v, _ := s.Session().Load("")
	c, _ := v.(*client)
	return c
}

func (handler) OnOpen(*gws.Conn) {}

func (handler) OnClose(s *gws.Conn, err error) {
	if c := clientOf(s); c != nil {
		c.readerEnded(err)
	}
}

// OnPing queues the pong on the client's writer (all writes go through it).
func (handler) OnPing(s *gws.Conn, payload []byte) {
	if c := clientOf(s); c != nil {
		c.reply(opPong, payload)
	}
}

func (handler) OnPong(*gws.Conn, []byte) {}

var (
	pongJSON  = []byte(`{"type":"pong","data":"ping"}`)
	errorJSON = []byte(`{"type":"error","detail":"unsupported message; send \"ping\""}`)
)

func (handler) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	c := clientOf(s)
	if c == nil {
		return
	}
	if hk := c.h.opts.hooks; hk != nil && hk.message != nil {
		hk.message(m.Bytes())
	}
	if m.Opcode == gws.OpcodeText && string(m.Bytes()) == "ping" {
		c.reply(opText, pongJSON)
		return
	}
	c.reply(opText, errorJSON)
}

// slot is a one-value gws.SessionStorage: gws's default is a map per
// connection, and we store exactly one thing.
type slot struct {
	mu sync.Mutex
	v  any
	ok bool
}

func (s *slot) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok {
		return 1
	}
	return 0
}

func (s *slot) Load(string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.ok
}

func (s *slot) Delete(string) {
	s.mu.Lock()
	s.v, s.ok = nil, false
	s.mu.Unlock()
}

func (s *slot) Store(_ string, v any) {
	s.mu.Lock()
	s.v, s.ok = v, true
	s.mu.Unlock()
}

func (s *slot) Range(f func(string, any) bool) {
	if v, ok := s.Load(""); ok {
		f("", v)
	}
}

// gwsLogger routes gws's error messages to slog.
type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error(fmt.Sprint(v...), "component", "gws") }

var errStopped = errors.New("wsfanout: client stopped")
