// Package eventlog is the sequenced, durable event log of SecureVision
// Events, stored in Pebble. It is the only package that imports Pebble.
//
// # Model
//
// The log is a sequence of records. The log assigns each record its id:
// ids start at 1, are contiguous within one Append call, strictly increase
// along the log and are never reused (the next id survives restarts and
// trims). A record is the canonical JSON of one event plus a small binary
// header (type, ts_ms, source) so that readers can filter without decoding
// JSON, and an optional blob (the snapshot JPEG).
//
// The id is the cursor of every reader: REST pages and WebSocket replay.
//
// # Writes: one writer goroutine, group commit
//
// Append hands its records to the single writer goroutine. The writer drains
// every request that is waiting (up to maxBatchBytes), assigns ids, splices
// id and created_at into each record's JSON, asks the Indexer (the
// projections package) for the index entries of each record, and applies
// everything as ONE Pebble batch with Sync. It does not wait for the fsync
// itself: Pebble's ApplyNoSyncWait makes the batch visible in the memtable
// and the syncer goroutine waits for the WAL fsync (Batch.SyncWait), so the
// writer builds the next batch while the previous one syncs. While a batch
// waits for its fsync, the writer yields once before draining, so that
// appenders woken by the previous acknowledgements join the next batch
// rather than trickling into small ones. Requests are answered, the
// committed watermark advanced and subscribers notified, in log order, only
// after the fsync.
//
// Buffers: Append copies its records into one slab per group commit and
// keeps no reference to the caller's memory once it returns. The slab is
// never reused (subscribers keep its entries), but the Pebble batch is:
// after the fsync the syncer resets a batch of at most reuseBatchBytes and
// hands it back to the writer through a small channel. Only the goroutine
// holding a batch touches it (writer, then syncer, then writer).
//
// Readers never see past the committed watermark (LastID): a record that is
// applied but not yet synced is invisible, so nothing read can be lost by a
// crash. A failed apply or sync is sticky: every later Append and Update
// returns the same error and Err reports it (health turns false).
//
// AppendWith takes an AppendHook that writes more keys into the same batch
// once the request's ids are known. AppendAt appends records at ids
// decided elsewhere (cluster mode's stream sequences, possibly with gaps)
// with their created_at, through the same writer, Indexer and OnCommit:
// the views and the commit bus cannot tell the two apart.
//
// Update runs a function on the writer goroutine with exclusive access (no
// append interleaves): retention uses it so that what it computes from the
// indexes is still true when its deletions commit.
//
// # Key layout (format version 2)
//
// All keys share one Pebble keyspace; the first byte names the family.
// Integers are big-endian so that byte order is numeric order.
//
//	'L' id:u64                 -> record: hdr | canonical JSON
//	'P' id:u64                 -> snapshot blob (JPEG), only if present
//	'M' name                   -> metadata:
//	    "Mversion"             -> u64 format version (2; 1 is read too)
//	    "Mlow"                 -> u64 low-water id: no record below it exists
//	                              and no reader seeks below it (range
//	                              tombstones make such seeks slow)
//	    "Mnext"                -> u64 next id to assign, written by every
//	                              non-empty Update (retention's deletions),
//	                              not by appends: on open
//	                              the next id is max(Mnext, last record + 1).
//	                              Appends then write only 'L' keys (and the
//	                              indexes), so a flushed memtable of the log
//	                              alone does not overlap older tables and
//	                              Pebble moves it down instead of rewriting
//	                              it (with projections' index keys in the
//	                              same memtable its tables span 'I'..'Z' and
//	                              are compacted anyway); a deletion may
//	                              remove the newest records, which is why it
//	                              persists Mnext.
//	'I' ...                    -> index families owned by package projections
//	                              (see projections/doc.go), written in the same
//	                              batch as their records
//	'Z' ...                    -> per-block summaries owned by projections
//	'C' name                   -> state of the log's readers, the
//	                              integrations, each under its own name
//	                              prefix ("Cmqtt/…", "Cwh/…"): cursors and
//	                              subscriptions, written with Update
//	'K' ...                    -> idempotency records of POST /ingest
//	                              (Idempotency-Key), owned by package
//	                              internal/idempotency (see its doc):
//	                              written by an AppendHook in the batch
//	                              of the records they answer for
//	'R' name                   -> cluster mode's replication state, owned
//	                              by package internal/cluster: the stream
//	                              position applied ("Rapplied"), written
//	                              in the batch that applies it, and the
//	                              stream the store follows ("Rstream")
//
// The record header (hdr) is, in format version 2:
//
//	+--------+--------+-------------+---------+---------------+
//	| ver=2  | type   | ts_ms (u64) | srclen  | source bytes  |  then JSON
//	| 1 byte | 1 byte | 8 bytes     | 2 bytes | srclen bytes  |
//	+--------+--------+-------------+---------+---------------+
//
// srclen is big-endian; Append refuses a source longer than it can hold
// (MaxSourceBytes) instead of truncating the length. Format version 1 had
// a one-byte srclen (header ver=1), which silently wrapped for sources of
// 256 bytes or more: 128 characters of a multi-byte script are up to 512
// bytes. Such records were corrupt when written; every other version 1
// record is read as it is, since SplitValue dispatches on the header's
// ver byte, and a store opened for writing is marked version 2 so that an
// older binary refuses it.
//
// The JSON is stored once, in its final form:
//
//	{"id":N,"type":"…","ts_ms":T,"frame_source_id":"…","created_at":"…","payload":{…}}
//
// so readers send stored bytes without re-encoding. created_at is assigned
// per batch by the writer, never decreasing along the log.
//
// # The contract
//
// RecordLog (record.go) is what the packages above rely on: ids,
// atomicity, the watermark, deletions and the order of the commit hooks.
// Log implements it. Package internal/core opens it (no other non-test
// code calls Open), with package projections as its Indexer and its commit
// bus as OnCommit.
//
// # Concurrency
//
// Append, Update, Get, NewIter, State and Close are safe for concurrent use.
// Iterators are not: one goroutine per iterator.
package eventlog
