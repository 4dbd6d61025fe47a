// Package core is the core of SecureVision Events in one place: the log of
// record (package eventlog), the projections that are its indexer (package
// projections), the one append path (package ingest) and the commit bus
// that hands every durable batch to the projections and then to the
// subscribers (the WebSocket hub, package wsfanout). core.Open builds them
// in the one correct order; the server (cmd/securevision serve), the
// offline tools (verify, export, import, detect), the benchmarks and the
// tests (through internal/storetest) all open their store with it, and no
// other non-test code calls eventlog.Open (layering_test.go checks).
//
// The log is used through its contract, eventlog.RecordLog: ids, atomic
// appends, the committed watermark, deletions through Update, and the
// commit hooks fixed at open. Core.Log returns the Pebble implementation
// for what only it has (checkpoints, backups).
//
// # Start-up
//
// core.Open, in order:
//
//  1. projections.New: the View, empty.
//  2. eventlog.Open: Pebble opens and replays its WAL; the log restores
//     its next id and watermark. The View is its Indexer and Core's bus
//     its OnCommit from the first batch on: there is no moment at which a
//     batch can commit without them.
//  3. View.Attach: the zone map and the rolling counts are loaded from the
//     store (not from a log replay).
//  4. ingest.New: the append path over the log.
//
// Then the caller, before it starts anything that appends: subscribes the
// consumers (serve: wsfanout.New, then Core.Subscribe(hub.Publish)),
// builds the HTTP API (httpd.New over Log, View and Ingest) and only then
// starts the producers (the HTTP listener, the vision pipeline, the
// retention loop View.RunRetention).
//
// # Shutdown
//
// The reverse, and each step only after the previous one ended (serve
// does exactly this):
//
//  1. http.Server.Shutdown: stop accepting, drain in-flight requests; the
//     appends among them finish (they commit, or fail and say so).
//  2. wsfanout.Hub.Shutdown: streams get close 1001; a client resumes with
//     after=<last id it saw>.
//  3. the background producers stop (vision pipeline, watchlist and
//     gallery reloaders, retention, in cluster mode the integrations'
//     lease).
//  4. the log's readers stop: the MQTT publisher waits for its PUBACKs
//     and writes its cursor, the webhook deliveries write theirs.
//  5. Core.Close: the log refuses new appends, its writer commits what is
//     queued, the syncer delivers those last batches through the bus, and
//     Pebble closes. Every acknowledged append was in the WAL already.
//
// # From POST /ingest to a WebSocket frame
//
//  1. httpd: the (*httpd.Server).ingest handler checks Content-Length and
//     picks JSON or NDJSON from Content-Type.
//  2. ingest.Decode parses the body and checks every item as
//     ingest.Validate does (a *ValidationError names each bad item).
//  3. ingest.Service appends (AppendValidated for a decoded body; Append
//     runs Validate first, for events built in code: vision, import):
//     it encodes each event's JSON parts once into eventlog.Records and
//     calls Log.Append, which waits for the outcome.
//  4. eventlog, writer goroutine (Log.writer, Log.commit): group commit.
//     It drains every waiting Append into one batch, assigns contiguous
//     ids, splices id and created_at into each record's JSON and copies
//     them into one slab.
//  5. Indexer: projections' View.Index collects each record (id order),
//     View.Finish writes the index keys (sorted) and the block summaries
//     into the same Pebble batch, so a record and its index entries are
//     never separated.
//  6. Pebble: the batch is applied (ApplyNoSyncWait) and the syncer
//     goroutine (Log.syncer) waits for its WAL fsync; meanwhile the writer
//     builds the next batch. After the fsync the watermark (LastID)
//     advances.
//  7. OnCommit, on the syncer goroutine, in log order: Core's bus calls
//     View.Committed (the rolling counts behind /health), then each
//     subscriber.
//  8. wsfanout: Hub.Publish pushes the batch (shared, not copied) onto
//     each client's bounded queue (client.push) and wakes its writer.
//  9. The Append calls return their ids; the handler answers 200 with
//     {count, first_id, last_id}. (So an event is queued for every stream
//     before its producer hears it is stored.)
//  10. The client's writer goroutine (client.run, drain, deliver) frames
//     each matching event's stored JSON as it is (appendFrame) and writes
//     the frames in chunks (client.flush, wsConn.writeChunk).
//
// # Cluster mode
//
// With Options.Cluster set, the log of record is a JetStream stream
// (package internal/cluster) and the Pebble log at URL is this node's view
// of it. Open does the same steps, then opens the cluster node (connects,
// checks the stream and that the store is its view, starts the follower)
// and gives it to ingest as its Appender: an append is published to the
// stream and answered once the follower has applied it. The follower
// appends with eventlog.Log.AppendAt, through the same Indexer and commit
// bus, so everything above core works unchanged. Close stops the node
// (follower, NATS connection) before the log. Without Options.Cluster, a
// store that is a cluster node's view is refused: it must not take
// writes of its own.
//
// In both modes ingest's Appender understands Idempotency-Key (package
// internal/idempotency): the HTTP handler puts the key and the body's
// hash into the request's context.
//
// # Costs on the commit goroutine
//
// The bus costs one atomic load per batch: subscribers live in a
// copy-on-write slice that Subscribe replaces under a mutex, never
// touched per event. A subscriber runs on the commit goroutine and delays
// every acknowledgement after it: it must not block.
package core
