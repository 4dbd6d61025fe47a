// Package cluster is cluster mode: the log of record is a NATS JetStream
// stream, replicated by JetStream (R3 Raft by default), and every API node
// keeps its own Pebble store as a materialized view of it. Package core
// selects it when the cluster URL is configured; everything above core
// (httpd, wsfanout, the integrations) works unchanged on the local views.
//
// # The stream
//
// One stream (Options.Stream, created when missing: file storage,
// Options.Replicas replicas, atomic batch publish allowed, a duplicate
// window of idempotency.Window) holds two kinds of messages, on the
// subjects
//
//	securevision.<stream>.e.<type>    an event (type: its type's name, a
//	                                  detection or an operator's action)
//	securevision.<stream>.r           a retention marker
//
// An event's id is its stream sequence. Sequences that hold no event
// (markers, messages deleted by retention) are gaps in the ids, as
// retention's holes are on one node. The message body is the record
// exactly as the publishing node built it (message.go): the record
// header (type, ts_ms, source), the JSON parts without id and created_at,
// the snapshot, and created_at, decided by the publisher, so that every
// node stores identical bytes (the follower splices the id and created_at
// in, as eventlog does on one node). The first message of a request also
// carries the request's size and, for a keyed request, its
// Idempotency-Key and body hash.
//
// # Writes
//
// Node.Append (the ingest.Appender of cluster mode) publishes one
// request as ONE atomic batch (ADR-50, orbit.go's jetstreamext): all of
// it is stored or none, at contiguous sequences, and the acknowledgement
// comes once the batch is stored on a quorum of replicas. A request of
// one event is a plain publish, which is atomic by itself and does not
// count against the server's limit of atomic batches in flight. The
// server caps a batch at MaxBatch messages: larger requests are refused
// (ingest.TooLargeError, HTTP 413), as are events whose message would
// pass the server's max_payload. After the acknowledgement Append waits
// until this node's follower has applied the last sequence, so the
// answer is readable on this node at once (read-your-writes); it waits
// at most Options.ApplyTimeout.
//
// A publish that gets no acknowledgement within Options.PublishTimeout
// (no stream leader, no quorum, NATS unreachable) fails with an error
// that wraps ingest.ErrUnavailable and says so (HTTP 503): never a hang.
// Its batch may still have been stored: a client that retries with the
// same Idempotency-Key gets it once.
//
// # The follower
//
// Each node runs one follower: an ordered consumer (ephemeral, flow
// controlled, recreated by the client library after an outage or a
// missed heartbeat, from the last sequence it delivered) starting after
// the node's applied position. A consumer that stops, or delivers
// nothing for stallAfter while the stream is known to be ahead, is
// replaced by a new one from the applied position. The apply loop takes what has arrived (up
// to maxApplyMsgs messages or maxApplyBytes) and appends the events with
// eventlog.Log.AppendAt at their sequences, with one hook that writes the
// applied position ('R' "Rapplied") and the idempotency records of the
// requests in the same Pebble batch: after a crash the views, the
// position and the idempotency records agree, and the follower resumes
// after the position. The records pass through the projections' Indexer
// and the commit bus exactly as on one node, so queries, /health counts
// and /stream replay and live tail come from the local views.
//
// The store remembers which stream it follows ('R' "Rstream": the
// stream's name and creation time). A store that follows another stream,
// or that holds events written in single-node mode, is refused at start:
// a view must come from one log.
//
// # Retention
//
// Retention stays defined by ts_ms. A node that runs a cleanup (POST
// /cleanup or its retention loop) does not delete anything itself: it
// appends a retention marker carrying the cutoff (ms) and its own node
// name. Every follower, on reaching the marker, runs the same cleanup as
// one node does (projections.View.Cleanup, with the marker's cutoff)
// over what it has applied up to the marker: the same events at the same
// stream position, so every node keeps the same retained set. Re-running
// a marker after a crash deletes nothing more (the cleanup is idempotent
// at a given position), which is why its applied position may be written
// after it.
//
// The node whose marker it is then trims the stream: it purges the
// prefix below its new low-water id (one request) and deletes the late
// (back-filled) expired events beyond it one by one. A node that comes
// back after a trim still finds the marker (it lies above everything
// purged) and converges; what was purged was expired or deleted at that
// point. If the marker's node dies before trimming, the stream keeps
// those messages until the next cleanup purges past them; a node built
// from the stream then deletes them again at the marker.
//
// # Health
//
// Node.Health is /health's cluster member: the stream, its last
// sequence as last seen (publish acknowledgements, the consumer's
// pending count, and a stream info poll every statusEvery), this node's
// applied position, their difference and whether NATS is connected.
//
// # Idempotency
//
// A keyed request is serialised by key on the node, looked up in the
// node's idempotency records, and published with the key as Nats-Msg-Id
// on its first message: JetStream refuses a batch whose message id it
// has stored within the duplicate window. Then the node waits until it
// has applied the stream up to its last sequence and answers from the
// record every follower wrote for the first request: the first answer
// for the same body, ErrKeyReused (422) for another.
//
// # What it does not do
//
// created_at is the publishing node's clock (clamped per store so it
// never decreases): under clock skew between API nodes it follows the
// stream order, not wall time. Every node runs its own retention loop
// and appends its own markers; cleanups are idempotent, so this costs a
// few small messages per interval. Integrations' leases (one node
// delivering) are in package lease, on this node's JetStream context
// (Node.JetStream).
package cluster
