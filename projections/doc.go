// Package projections keeps the materialized views of the event log: the
// type, time and source indexes, per-block summaries (a zone map), the
// rolling five-minute counts behind /health, the query primitive of
// GET /events, retention and the offline consistency check.
//
// Index entries are collected by View.Index on the log's writer goroutine
// and written, sorted by key, by View.Finish into the same Pebble batch as
// their records, so a crash can never separate a record from its index
// entries. (Sorted keys let Pebble's memtable insert continue from the
// previous position instead of searching the skiplist from the top.)
//
// # Key layout (format version 1; family bytes 'I' and 'Z' of eventlog)
//
//	'I' 'y' type:u8 id:u64           -> ""        type index
//	'I' 't' ts_ms:u64 id:u64         -> type:u8   time index
//	'I' 's' source 0x00 id:u64       -> record|"" source index (covering)
//	'Z' block:u64                    -> min_ts:u64 max_ts:u64 live:u64
//
// type is the event type's code from internal/vocab (1 face_match,
// 2 plate_read), the byte the log's record header carries too: codes are on
// disk, so vocab never renumbers them, and projections only reads them from
// there. Integers are big-endian. ts_ms is validated positive at ingest, so
// its unsigned encoding sorts numerically. Sources are printable, so 0x00
// terminates them unambiguously. The type index is kept (verify and
// retention maintain it) but no query reads it: a type filter is not
// selective, and scanning the log beats a seek per match (see Query).
//
// The source index covers its query: an entry's value is a byte-for-byte
// copy of the log record (eventlog.Entry.Value), so a page of one camera's
// events is a sequential read of the index instead of one log seek per
// event. The price is a second copy of every record; BENCHMARKS.md
// section b measures it (WAL bytes per event and batch-ingest rate, with
// and without the copy) and section c the source page. An entry may have
// an empty value instead (a record is never empty): with
// Options.SourceKeysOnly (SECUREVISION__EVENTS__SOURCE_INDEX=keys), or
// written before the index was covering. Queries read those records from
// the log, one seek each, so keys-only stores and older stores work.
// Verify checks that every copy equals its record and counts the empty
// ones.
//
// A block is blockSize consecutive ids (block = id / blockSize). Its summary
// holds the smallest and largest ts_ms of its live records and how many are
// live. The summaries are loaded into memory at start (10M events are
// 10k summaries) and serve three purposes:
//
//   - queries with since/until skip blocks whose [min_ts, max_ts] misses the
//     range;
//   - retention finds the expired prefix of the log without reading it and
//     the late (out-of-order) expired records beyond it by reading only the
//     blocks whose min_ts is expired;
//   - retention counts what it deleted from live counts, not by iteration.
//
// # Retention
//
// Cleanup runs as one eventlog Update (exclusive with appends, see
// eventlog.Log.Update). With cutoff = now − retention:
//
//  1. the prefix: whole blocks whose max_ts < cutoff, then the records of the
//     next block up to the first unexpired one. The log prefix, its
//     snapshots, each type's and each source's index range are deleted with
//     range deletions; the cost depends on the number of types, sources and
//     one block, not on the number of records trimmed.
//  2. late records: every later block with min_ts < cutoff is read and its
//     expired records are deleted one by one (with their index entries).
//  3. the time index below cutoff is deleted with one range deletion: every
//     record it covers was deleted in step 1 or 2.
//
// # Rolling counts
//
// /health counts events whose ts_ms lies in the last
// vocab.RecentWindowSeconds, per type. The counts live in a ring of
// per-second buckets fed after each durable commit and rebuilt at start
// from the time index (only that window of it: no log replay). Events stamped more than ringAhead seconds in the future are
// not counted until they are appended again (they are rare clock errors).
//
// # Concurrency
//
// View is safe for concurrent use. mu guards the zone map and the ring; it
// is held for memory operations only, never during I/O.
package projections
