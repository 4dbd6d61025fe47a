// Package wsfanout serves the WebSocket stream (GET /stream): every
// committed event of the log, as its stored canonical JSON, to every
// connected client, with a replayable id cursor, filters and bounded memory
// per client. The filters (?type=, ?source=) and the cursor (?after=) are
// read as GET /events reads them, with internal/httpx, and a type filter
// compares the event type codes of internal/vocab with the codes the log's
// entries carry: the stream sits beside the read side (projections), not on
// it. It is built on github.com/lxzan/gws for the handshake and the
// read side; the write side is ours (see "Writes"), and gws parses only
// frame headers we have checked (see "Hostile input").
//
// Of the log of record it needs the committed batches, which its owner
// hands to Hub.Publish (package core subscribes it to the commit bus), and
// reads through LogReader, declared here: the watermark, the low-water id
// and an iterator over an id range. *eventlog.Log implements LogReader;
// the iterator stays the concrete *eventlog.Iter, so replay costs no
// dynamic call per record.
//
// # Messages
//
// Server → client, one text message each:
//
//	{"id":N,"type":…}                           an event: exactly the bytes the
//	                                            log stores (never re-encoded)
//	{"type":"gap","first_available_id":N}        the cursor points below the
//	                                            oldest retained event; delivery
//	                                            continues at N
//	{"type":"pong","data":"ping"}                answer to the text "ping"
//	{"type":"error","detail":"…"}                answer to any other message;
//	                                            the stream stays open
//
// Protocol-level pings are answered with a pong carrying the same payload.
// An inbound frame longer than Options.MaxMessageBytes is refused before
// gws parses its header: the connection is closed with 1009 "message too
// large" without reading the payload (see "Hostile input"). A message
// whose fragments together exceed the cap is closed with 1009 by gws
// (ServerOption.ReadMaxPayloadSize).
//
// Close codes sent by the server:
//
//	1001 "server shutting down"                  Hub.Shutdown
//	1008 "websocket streaming is disabled"       Options.Enabled is false
//	4000 "too slow: resume with after=N"         the client stopped reading
//	                                            (see "Slow clients")
//	1002 "protocol error"                        a frame length with the top
//	                                            bit set (see "Hostile input");
//	                                            gws sends 1002 for its own
//	                                            protocol checks (unmasked
//	                                            frame, bad opcode, …)
//	1009 "message too large"                     see above
//	1007 (invalid UTF-8 in a text message)       (gws: CheckUtf8Enabled)
//	1011 "internal error"                        a goroutine of the connection
//	                                            panicked (see "Panics")
//
// # Cursor semantics
//
// Event ids are the log's sequence numbers: contiguous along the log,
// strictly increasing, never reused; retention removes a prefix and,
// beyond it, single expired records (holes). Each client has one cursor:
// the id of the last event it has been handed, whether or not its filters
// (?type=, ?source=) let the event through. Everything with id <= cursor is
// done for that client; the next event it can receive is the first retained
// matching one above the cursor. The cursor therefore advances over
// filtered-out ids and over holes, and "resume with after=<cursor>" on the
// same filters never repeats or loses an event.
//
//   - ?after=K: cursor = K. Every retained event with id > K is replayed
//     from the log, then the stream continues live.
//   - no after: cursor = the committed watermark (eventlog LastID) read
//     after the client was registered for live batches (see below): live
//     events from the moment of connection.
//
// A catch-up pass that starts at from = cursor+1 and finds its first record
// above from, with no retained record below from either (the prefix was
// trimmed), first sends {"type":"gap","first_available_id":N} where N is the
// first retained id (or, if none is retained, the next id the log will
// assign). Holes left by late-record deletion above the oldest retained
// event are skipped silently: they are expired events, never shown anywhere.
//
// # Hand-over: replay → live, without gap or duplicate
//
// The log publishes each durable batch (contiguous ids) through its OnCommit
// hook, in log order, after it has advanced the committed watermark. So at
// any moment: every published id is <= LastID, and batches reach a client's
// queue in id order, each continuing the previous one.
//
// Hub.Publish appends the batch (shared, never copied) to every client's
// queue. The client's writer goroutine takes the queue and, per batch:
//
//  1. ids <= cursor are dropped (already delivered from the log);
//  2. if the batch starts above cursor+1 the missing ids were published
//     before the client was registered or were dropped by an overflow: it
//     reads them from the log first (catch-up), up to batch.first-1, which
//     the log has committed;
//  3. the rest is delivered and the cursor moves to the batch's last id.
//
// When a client's queue would exceed Options.QueueLen events, Publish drops
// the whole queue (freeing the memory at once) and flags the client
// lagging; while it is lagging Publish does not queue for it. The writer,
// seeing the flag, clears it under the client's lock and then reads the log
// from cursor+1 to LastID read after the clear. Any batch Publish skipped
// was published before the clear, so its ids were <= LastID before the
// clear: the catch-up covers it. Batches queued after the clear are deduped
// by rule 1 and any residual hole is caught by rule 2. Registration works
// the same way: the client is added to the hub first, then its cursor (live)
// or its first catch-up target (after=K) is read, so the first queued batch
// either overlaps or continues it.
//
// Catch-up reads the log in chunks (at most chunkEvents records or
// chunkBytes of frames) with a fresh iterator per chunk, closed before the
// chunk is written: a slow socket never pins Pebble memtables or sstables.
//
// A batch whose entries all fail a client's filters is not queued while
// the client's queue is empty (behind queued batches it is queued, and the
// writer filters it): Publish records it as a skipped range (contiguous
// with the previous one) that the writer applies as an empty batch, so
// idle filtered clients are not woken.
//
// # Writes
//
// gws's own asynchronous write queue (WriteAsync) has no bound, so it is not
// used. Each client has one writer goroutine that encodes frames (unmasked
// server text frames, no compression) into a pooled buffer of up to
// chunkBytes and writes it to the socket synchronously with a deadline.
// gws's own writes (the echo of a client's close frame, its protocol
// errors) reach the socket through wsConn, whose mutex serializes them
// with ours at whole-chunk granularity; after a close frame, ours or
// gws's, wsConn discards everything else (RFC 6455 §5.5.1). Pongs and
// replies to client messages are queued to the writer too (at most
// maxReplies; more are dropped and counted).
//
// # Slow clients
//
// Publish never blocks and never waits for a client. A client that reads
// slowly overflows its queue and is fed from the log (lagging). A client
// that stops reading blocks its own writer only: each socket write has the
// deadline min(now+WriteTimeout, lastProgress+StallTimeout), where
// lastProgress is the end of the previous completed write (or the moment
// the writer woke with work after being idle); to spare a timer update per
// write, a deadline already set is kept while it is no more than
// WriteTimeout/4 earlier than that. When it expires the client
// is disconnected: the writer gives the socket closeGrace to take the rest
// of the chunk and a 4000 close frame "too slow: resume with after=<cursor>"
// (a client that resumes reading within that time sees the reason), then
// closes the TCP connection. The disconnect is counted
// (securevision_wsfanout_disconnects_total{reason="too_slow"}) and logged at
// Info. The client resumes without loss with ?after=<last id it received>.
//
// # Memory bound (per client)
//
//   - queue: at most QueueLen events (a single batch larger than that is
//     accepted only into an empty queue), held as pointers to batches shared
//     by all clients; plus, while the writer works, the one queue it took
//     (same bound). Batches are shared, so N clients reference the same few
//     recent batches, not N copies.
//   - one frame buffer of at most chunkBytes plus one event, taken from a
//     pool only while the writer has work; idle clients hold none.
//   - replies: at most maxReplies small frames.
//   - the gws connection, which parses from the HTTP server's 4 KiB read
//     buffer (taken over at the hijack), two goroutines (reader, writer)
//     and a few hundred bytes of bookkeeping (the frame guard included).
//
// The kernel's socket buffers come on top; Options.SendBuffer can cap the
// send side.
//
// # Hostile input
//
// gws converts a 64-bit frame length to int without a check: a length with
// the top bit set turns negative, passes ReadMaxPayloadSize and makes gws
// panic slicing its buffer. So gws never reads the socket directly: the
// bufio.Reader it parses from (the HTTP server's, with whatever it had
// buffered past the handshake) reads through a frameGuard, which follows
// the frame boundaries of the byte stream: it decodes the length and mask
// bit of each header and only counts payload bytes, at a negligible cost
// per small frame (BenchmarkFrameGuardPing). A header whose length has
// the top bit
// set (RFC 6455 requires it clear) or exceeds MaxMessageBytes, data or
// control frame alike, is refused at the byte that completes its length:
// that byte and everything after it are withheld from gws, the guard
// sends the close frame (1002 or 1009) on the reader goroutine and gws's
// read loop gets the error and closes the socket. gws still checks the
// rest (mask bit, reserved bits, opcodes, control frame rules, UTF-8).
//
// # Panics
//
// A panic in one connection's goroutines does not end the process (fatal
// runtime errors such as running out of memory are not panics). Both
// goroutines (gws's read loop with our callbacks under it, and our
// writer) recover at their top: the panic is counted
// (securevision_wsfanout_panics_total), logged at Error with its stack,
// the client gets close 1011 "internal error" when a frame can still be
// sent, and the connection ends as any other (disconnects_total
// {reason="panic"}); the other clients are untouched. gws's own recovery
// (ServerOption.Recovery) is off so that callback panics reach ours and
// close the connection rather than leave it in an unknown state. A panic
// during the upgrade, after the hijack, is recovered in ServeHTTP: it is
// counted and logged, the socket is closed and its slot freed.
//
// # Locks
//
// Hub.mu guards the set of clients and the closing flag; client.mu guards a
// client's queue, lagging flag, skipped range, replies and close request.
// Fields a mutex guards live inside a mu struct; methods that expect it held
// end in Locked. Neither is ever held during I/O (socket or log): Publish
// takes Hub.mu, then each client.mu in turn, for memory operations only.
// Lock order: Hub.mu before client.mu. wsConn.mu serializes socket writes
// and is held only by the goroutine doing the write.
//
// # Metrics
//
//	securevision_wsfanout_clients                  gauge: connections holding a slot (upgrading ones included)
//	securevision_wsfanout_messages_sent_total      counter: event messages written
//	securevision_wsfanout_log_reads_total          counter: catch-up chunks read from the log
//	securevision_wsfanout_log_read_events_total    counter: records read by catch-up
//	securevision_wsfanout_queue_overflows_total    counter: queues dropped (client then fed from the log)
//	securevision_wsfanout_dropped_replies_total    counter: pongs/replies dropped (reply queue full)
//	securevision_wsfanout_panics_total             counter: panics recovered in connection goroutines (see "Panics")
//	securevision_wsfanout_disconnects_total{reason} counter: client_closed, too_slow, write_error, read_error, message_too_large, shutdown, disabled, log_error, panic
//	securevision_wsfanout_refused_total{reason}    counter: connections refused before the upgrade: max_clients, shutting_down, bad_request
//	securevision_wsfanout_delivery_lag_seconds     histogram: now − created_at of the newest event of each write
//
// The lag is observed once per socket write, for its newest event. For live
// batches created_at comes from eventlog.Entry.CreatedMs; for log reads it is
// parsed from the record's JSON (the fixed "created_at" member, millisecond
// precision). A replay from an old cursor therefore shows large lags: that
// is the truth about how old the delivered data is.
package wsfanout
