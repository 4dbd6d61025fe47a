package wsfanout

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

const (
	// chunkBytes is the size at which the writer flushes its frame buffer:
	// large enough that a replay costs one syscall per ~100 events, small
	// enough that a client blocked in a write holds little memory.
	chunkBytes = 32 << 10
	// chunkEvents bounds the records one catch-up iterator reads before it
	// is closed (iterators pin memtables; a slow socket must not).
	chunkEvents = 512
	// maxPooledBuf: buffers that grew beyond this (huge events) are not
	// pooled.
	maxPooledBuf = 4 * chunkBytes
	// maxReplies bounds queued pongs/replies per client; a client that
	// floods pings without reading loses replies (counted), not memory.
	maxReplies = 16
	// closeGrace is how long a disconnected slow client's socket is given
	// to take the rest of its chunk and the close frame, so that a client
	// that resumes reading soon learns why and where to resume.
	closeGrace = 2 * time.Second
	// closeWait is how long we wait for the client's close frame after
	// sending ours before dropping the TCP connection (graceful close
	// avoids a reset that could discard the close frame).
	closeWait = 2 * time.Second
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// filter is a client's ?type= and ?source=. types is a bit set of type
// codes (1<<code): the one asked for, or without ?type= the detections
// (vocab.DetectionMask), so that operators' actions reach only the
// clients that ask for them.
type filter struct {
	types     uint32
	source    string
	hasSource bool
}

// typeFilter is the filter's types for a ?type= code (0: none given).
func typeFilter(code uint8) uint32 {
	if code == 0 {
		return vocab.DetectionMask
	}
	return 1 << (code & 31)
}

func (f *filter) match(typ uint8, src []byte) bool {
	if f.types&(1<<(typ&31)) == 0 {
		return false
	}
	return !f.hasSource || string(src) == f.source
}

func (f *filter) matchEntry(e *eventlog.Entry) bool {
	if f.types&(1<<(e.Type&31)) == 0 {
		return false
	}
	return !f.hasSource || e.Source == f.source
}

// relevant reports whether any entry of b passes the filter. It runs for
// every client on Publish's goroutine, before the batch's appends are
// acknowledged: it answers from the batch's type bits and source map, not
// by scanning the entries per client.
func (f *filter) relevant(b *batch) bool {
	if b.types&f.types == 0 {
		return false
	}
	if !f.hasSource {
		return true
	}
	bits, ok := b.sourceTypes()[f.source]
	return ok && bits&f.types != 0
}

type reply struct {
	op   byte
	data []byte
}

// client is one stream connection: a gws reader goroutine (read) and our
// writer goroutine (run).
type client struct {
	// dec is the replay's buffer for a decorated event (writer goroutine).
	dec      []byte
	h        *Hub
	conn     *wsConn
	socket   *gws.Conn
	f        filter
	hasAfter bool
	disabled bool

	wake       chan struct{} // cap 1: work was queued
	readerDone chan struct{} // closed when the read loop ended
	readerOnce sync.Once
	idx        int // position in Hub.mu.subs; guarded by Hub.mu

	// cursorSeen mirrors cursor for logs written by other goroutines.
	cursorSeen atomic.Uint64
	// stopping is set with mu.closing: a long catch-up checks it per chunk.
	stopping atomic.Bool

	mu struct {
		sync.Mutex
		queue   []*batch
		queued  int // events in queue
		lagging bool
		// skipFirst..skipLast is a run of published batches none of whose
		// entries pass the filter (0, 0: none); it precedes queue.
		skipFirst, skipLast uint64
		replies             []reply
		closing             bool
		closeCode           uint16
		closeReason         string
		closed              bool
		reason              string
	}

	// Writer goroutine state.
	cursor    uint64
	spare     []*batch
	spareRep  []reply
	bufp      *[]byte
	out       []byte
	outEvents int
	newestMs  int64 // created_at of the newest event in out, if known
	newestOff int   // else: offset of its JSON in out (-1: none)
	progress  time.Time
	// dl is the write deadline currently set on the socket.
	dl time.Time
}

func newClient(h *Hub, wc *wsConn, s *gws.Conn, p params) *client {
	c := &client{
		h: h, conn: wc, socket: s, f: p.f, hasAfter: p.hasAfter, disabled: !h.opts.Enabled,
		wake:       make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		cursor:     p.after,
		newestOff:  -1,
	}
	return c
}

// setReasonLocked records the first cause of the disconnect.
func (c *client) setReasonLocked(r string) {
	if c.mu.reason == "" {
		c.mu.reason = r
	}
}

func (c *client) setReason(r string) {
	c.mu.Lock()
	c.setReasonLocked(r)
	c.mu.Unlock()
}

func (c *client) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.reason == "" {
		return reasonClientClosed
	}
	return c.mu.reason
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// push is Publish's per-client step: memory operations only.
func (c *client) push(b *batch) {
	relevant := c.f.relevant(b)
	c.mu.Lock()
	if c.mu.closed || c.mu.lagging {
		c.mu.Unlock()
		return
	}
	if !relevant && len(c.mu.queue) == 0 {
		switch {
		case c.mu.skipLast == 0:
			c.mu.skipFirst, c.mu.skipLast = b.first, b.last
			c.mu.Unlock()
			return
		case c.mu.skipLast+1 == b.first:
			c.mu.skipLast = b.last
			c.mu.Unlock()
			return
		}
		// Not contiguous (cannot happen: batches are published in order
		// without gaps); queue it, the writer sorts it out.
	}
	if c.mu.queued > 0 && c.mu.queued+len(b.entries) > c.h.opts.QueueLen {
		// Overflow: drop everything queued (the log has it) and feed the
		// client from the log until it has caught up.
		clear(c.mu.queue)
		c.mu.queue = c.mu.queue[:0]
		c.mu.queued = 0
		c.mu.skipFirst, c.mu.skipLast = 0, 0
		c.mu.lagging = true
		c.mu.Unlock()
		c.h.m.overflows.Inc()
		c.signal()
		return
	}
	c.mu.queue = append(c.mu.queue, b)
	c.mu.queued += len(b.entries)
	c.mu.Unlock()
	c.signal()
}

// reply queues a control or reply frame for the writer (reader goroutine).
func (c *client) reply(op byte, data []byte) {
	c.mu.Lock()
	if c.mu.closed || c.mu.closing {
		c.mu.Unlock()
		return
	}
	if len(c.mu.replies) >= maxReplies {
		c.mu.Unlock()
		c.h.m.droppedReply.Inc()
		return
	}
	c.mu.replies = append(c.mu.replies, reply{op, data})
	c.mu.Unlock()
	c.signal()
}

// requestClose asks the writer to send a close frame and stop.
func (c *client) requestClose(code uint16, reason, metricReason string) {
	c.mu.Lock()
	if !c.mu.closing {
		c.mu.closing, c.mu.closeCode, c.mu.closeReason = true, code, reason
		c.setReasonLocked(metricReason)
	}
	c.mu.Unlock()
	c.stopping.Store(true)
	c.signal()
}

// read runs gws's read loop; OnClose calls readerEnded.
func (c *client) read() {
	defer c.h.wg.Done()
	defer c.recoverPanic("reader")
	c.socket.ReadLoop()
	c.readerEnded(nil) // in case gws ended without OnClose
}

var errPanicked = errors.New("wsfanout: connection goroutine panicked")

// recoverPanic runs before the other deferred calls of each of the
// client's goroutines and keeps a panic there from ending the process: it
// counts and logs it with its stack, sends close 1011 (best effort; wsConn
// drops it after a close frame or once the socket was abandoned) and ends
// the connection. The other goroutine then ends as on any disconnect.
func (c *client) recoverPanic(goroutine string) {
	v := recover()
	if v == nil {
		return
	}
	c.h.m.panics.Inc()
	c.setReason(reasonPanic)
	c.h.logger.Error("stream: panic in a connection goroutine; connection closed",
		"goroutine", goroutine, "panic", v, "remote", c.conn.RemoteAddr().String(),
		"cursor", c.cursorSeen.Load(), "stack", string(debug.Stack()))
	buf := appendCloseFrame(nil, CloseInternalError, "internal error")
	_, _ = c.conn.writeChunk(buf, time.Now().Add(closeGrace), true)
	c.conn.markClosed()
	_ = c.conn.Close()
	if goroutine == "reader" {
		c.readerEnded(errPanicked)
	}
}

// refuseFrame fails the connection on a refused frame header (reader
// goroutine, from the frameGuard): it sends the close frame itself, since
// the stream can no longer be parsed; gws's read loop then gets the error,
// whose own close frame wsConn discards, and closes the socket.
func (c *client) refuseFrame(e *frameError) {
	c.setReason(classifyReadErr(e))
	buf := appendCloseFrame(nil, e.code, e.reason)
	_, _ = c.conn.writeChunk(buf, time.Now().Add(closeGrace), true)
}

// readerEnded: the connection is gone for reading; stop the writer and
// unregister.
func (c *client) readerEnded(err error) {
	c.readerOnce.Do(func() {
		c.mu.Lock()
		c.setReasonLocked(classifyReadErr(err))
		c.mu.closed = true
		clear(c.mu.queue)
		c.mu.queue, c.mu.queued, c.mu.replies = nil, 0, nil
		c.mu.Unlock()
		close(c.readerDone)
		_ = c.conn.Close()
		c.h.unregister(c)
	})
}

func classifyReadErr(err error) string {
	var ce *gws.CloseError
	var sc interface{ Uint16() uint16 }
	switch {
	case err == nil, errors.As(err, &ce), errors.Is(err, io.EOF):
		return reasonClientClosed
	case errors.As(err, &sc) && sc.Uint16() == 1009:
		return reasonTooLarge
	}
	return reasonReadError
}

// run is the writer goroutine.
func (c *client) run() {
	defer c.h.wg.Done()
	defer c.releaseBuf()
	defer c.recoverPanic("writer")
	c.progress = time.Now()
	if c.disabled {
		c.requestClose(ClosePolicyViolation, "websocket streaming is disabled", reasonDisabled)
	} else if c.hasAfter {
		if err := c.catchUp(c.h.log.LastID()); err != nil && !errors.Is(err, errClosing) {
			c.stop(err)
			return
		}
	}
	for {
		if err := c.drain(); err != nil {
			c.stop(err)
			return
		}
		c.releaseBuf()
		select {
		case <-c.wake:
			c.progress = time.Now()
		case <-c.readerDone:
			return
		}
	}
}

// stop ends the writer after err; errStopped means a close frame was sent.
func (c *client) stop(err error) {
	if errors.Is(err, errStopped) {
		return
	}
	var le *logError
	switch {
	case errors.As(err, &le):
		c.setReason(reasonLogError)
		c.h.logger.Error("stream: log read failed", "err", err)
	default:
		c.setReason(reasonWriteError)
	}
	c.conn.markClosed()
	_ = c.conn.Close()
}

type logError struct{ err error }

func (e *logError) Error() string { return "wsfanout: read log: " + e.err.Error() }
func (e *logError) Unwrap() error { return e.err }

// errClosing aborts a delivery (before anything out of order is buffered)
// so that drain can send the requested close frame.
var errClosing = errors.New("wsfanout: close requested")

// drain writes everything queued until the queue is empty.
func (c *client) drain() error {
	for {
		more, err := c.drainOnce()
		switch {
		case errors.Is(err, errClosing):
			// The next round sends the close frame.
		case err != nil:
			return err
		case !more:
			return nil
		}
	}
}

// drainOnce takes what is queued and delivers it. more reports that it
// found work, so drain calls it again; with an empty queue it flushes
// and returns more == false.
func (c *client) drainOnce() (more bool, err error) {
	c.mu.Lock()
	if c.mu.closing {
		code, reason := c.mu.closeCode, c.mu.closeReason
		c.mu.Unlock()
		return false, c.sendClose(code, reason)
	}
	if c.mu.closed {
		c.mu.Unlock()
		return false, errStopped
	}
	q := c.mu.queue
	c.mu.queue = c.spare[:0]
	c.mu.queued = 0
	reps := c.mu.replies
	c.mu.replies = c.spareRep[:0]
	lag := c.mu.lagging
	c.mu.lagging = false
	sf, sl := c.mu.skipFirst, c.mu.skipLast
	c.mu.skipFirst, c.mu.skipLast = 0, 0
	c.mu.Unlock()

	if len(q) == 0 && len(reps) == 0 && !lag && sl == 0 {
		c.spare, c.spareRep = q, reps
		return false, c.flush()
	}
	for i, r := range reps {
		c.buf()
		c.out = appendFrame(c.out, r.op, r.data)
		reps[i] = reply{}
	}
	if lag {
		// Read after the flag was cleared: covers every batch Publish
		// skipped while the client was lagging (doc.go).
		if err := c.catchUp(c.h.log.LastID()); err != nil {
			return false, err
		}
	}
	if sl != 0 {
		if err := c.deliver(&batch{first: sf, last: sl}); err != nil {
			return false, err
		}
	}
	for i, b := range q {
		if err := c.deliver(b); err != nil {
			return false, err
		}
		q[i] = nil
	}
	c.spare, c.spareRep = q[:0], reps[:0]
	return true, nil
}

// deliver writes the entries of b above the cursor, catching up from the
// log first if b does not continue the cursor.
func (c *client) deliver(b *batch) error {
	if b.last <= c.cursor {
		return nil
	}
	if b.first > c.cursor+1 {
		if err := c.catchUp(b.first - 1); err != nil {
			return err
		}
	}
	for i := range b.entries {
		e := &b.entries[i]
		if e.ID <= c.cursor {
			continue
		}
		c.cursor = e.ID
		if !c.f.matchEntry(e) {
			continue
		}
		c.buf()
		c.out = appendFrame(c.out, opText, e.JSON)
		c.outEvents++
		c.newestMs, c.newestOff = e.CreatedMs, -1
		if len(c.out) >= chunkBytes {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	c.cursor = b.last
	return nil
}

// catchUp delivers from the log every retained record in (cursor, to];
// to must not exceed the committed watermark.
func (c *client) catchUp(to uint64) error {
	for c.cursor < to {
		if c.stopping.Load() {
			return errClosing // drain sends the close frame next
		}
		from := c.cursor + 1
		it, err := c.h.log.NewLogIter(from, to)
		if err != nil {
			return &logError{err}
		}
		n, exhausted, first := 0, true, true
		for ok := it.First(); ok; ok = it.Next() {
			id := eventlog.KeyID(it.Key())
			if first {
				first = false
				if id > from {
					if err := c.gapCheck(from, id); err != nil {
						it.Close()
						return err
					}
				}
			}
			typ, _, src, js, err := eventlog.SplitValue(it.Value())
			if err != nil {
				it.Close()
				return &logError{fmt.Errorf("record %d: %w", id, err)}
			}
			c.cursor = id
			n++
			if c.f.match(typ, src) {
				c.buf()
				c.newestOff, c.newestMs = len(c.out), 0
				if dec := c.h.opts.Decorate; dec != nil && vocab.IsDetection(typ) {
					c.dec = dec(c.dec[:0], id, js)
					js = c.dec
				}
				c.out = appendFrame(c.out, opText, js)
				c.outEvents++
			}
			if n >= chunkEvents || len(c.out) >= chunkBytes {
				exhausted = false
				break
			}
		}
		if first {
			// Nothing retained in [from, to].
			if err := c.gapCheck(from, to+1); err != nil {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return &logError{err}
		}
		c.h.m.logReads.Inc()
		c.h.m.logReadEvents.Add(float64(n))
		if exhausted && c.cursor < to {
			// Everything up to to is committed; what was not found is gone.
			c.cursor = to
		}
		if !exhausted || len(c.out) >= chunkBytes {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// gapCheck sends the gap notice when no record below from is retained:
// the cursor points below the oldest retained event, whose id is next.
func (c *client) gapCheck(from, next uint64) error {
	if low := c.h.log.State().First; from > low {
		it, err := c.h.log.NewLogIter(low, from-1)
		if err != nil {
			return &logError{err}
		}
		has := it.First()
		if err := it.Close(); err != nil {
			return &logError{err}
		}
		if has {
			return nil // a hole left by retention of late events: skip it
		}
	}
	c.buf()
	var tmp [64]byte
	msg := append(tmp[:0], `{"type":"gap","first_available_id":`...)
	msg = strconv.AppendUint(msg, next, 10)
	msg = append(msg, '}')
	c.out = appendFrame(c.out, opText, msg)
	return nil
}

// buf makes sure c.out is a pooled buffer.
func (c *client) buf() {
	if c.bufp == nil {
		c.bufp = bufPool.Get().(*[]byte)
		c.out = (*c.bufp)[:0]
	}
}

func (c *client) releaseBuf() {
	if c.bufp == nil || len(c.out) > 0 {
		return
	}
	if cap(c.out) <= maxPooledBuf {
		*c.bufp = c.out[:0]
		bufPool.Put(c.bufp)
	}
	c.bufp, c.out = nil, nil
}

// deadline is the write deadline: WriteTimeout for this write, and no more
// than StallTimeout since the last progress.
func (c *client) deadline(now time.Time) time.Time {
	d := now.Add(c.h.opts.WriteTimeout)
	if s := c.progress.Add(c.h.opts.StallTimeout); s.Before(d) {
		d = s
	}
	return d
}

// flush writes c.out to the socket.
func (c *client) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	if hk := c.h.opts.hooks; hk != nil && hk.flush != nil {
		hk.flush(c.out)
	}
	// Setting a deadline costs a runtime timer update per write; a busy
	// stream keeps the one it has while it is at least 3/4 of the wanted
	// one away, so a write gets between 3/4 and all of its allowance.
	now := time.Now()
	want, set := c.deadline(now), time.Time{}
	if want.Before(c.dl) || want.Sub(c.dl) > c.h.opts.WriteTimeout/4 {
		set, c.dl = want, want
	}
	n, err := c.conn.writeChunk(c.out, set, false)
	if err != nil {
		return c.writeFailed(n, err)
	}
	done := time.Now()
	c.progress = done
	if c.outEvents > 0 {
		c.h.m.sent.Add(float64(c.outEvents))
		ms := c.newestMs
		if c.newestOff >= 0 {
			ms = eventlog.CreatedMs(c.out[c.newestOff:])
		}
		if ms > 0 {
			c.h.m.lag.Observe(float64(done.UnixMilli()-ms) / 1000)
		}
	}
	c.cursorSeen.Store(c.cursor)
	c.out = c.out[:0]
	c.outEvents, c.newestMs, c.newestOff = 0, 0, -1
	return nil
}

// writeFailed handles a failed socket write: a timeout is a client too
// slow to keep up (close 4000 with the resume cursor, best effort within
// closeGrace); anything else a broken connection.
func (c *client) writeFailed(n int, err error) error {
	c.cursorSeen.Store(c.cursor)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.setReason(reasonWriteError)
		c.conn.markClosed()
		_ = c.conn.Close()
		return errStopped
	}
	c.setReason(reasonTooSlow)
	rest := append(c.out[n:len(c.out):len(c.out)], nil...)
	rest = appendCloseFrame(rest, CloseTooSlow, "too slow: resume with after="+strconv.FormatUint(c.cursor, 10))
	c.out = c.out[:0]
	c.outEvents = 0
	_, _ = c.conn.writeChunk(rest, time.Now().Add(closeGrace), true)
	_ = c.conn.Close()
	return errStopped
}

// sendClose writes pending frames and a close frame, then gives the client
// closeWait to answer before the read loop drops the connection.
func (c *client) sendClose(code uint16, reason string) error {
	c.buf()
	c.out = appendCloseFrame(c.out, code, reason)
	_, err := c.conn.writeChunk(c.out, time.Now().Add(min(c.h.opts.WriteTimeout, closeGrace)), true)
	c.out = c.out[:0]
	c.outEvents = 0
	if err != nil {
		_ = c.conn.Close()
		return errStopped
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(closeWait))
	return errStopped
}
