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
//	'I' 'c' detection:u64 corr:u64   -> member    corrections
//	'I' 'h' hash:16 id:u64           -> ts_ms:u64 len:u16 plate source   plate history
//	'I' 'n' hash:16 id:u64           -> ts_ms:u64 len:u16 name source    person history
//	'I' 'v'                          -> u64       identity views' version
//	'Z' block:u64                    -> min_ts:u64 max_ts:u64 live:u64 det:u64
//
// type is the event type's code from internal/vocab (1 face_match,
// 2 plate_read, 3 correction, 4 watchlist_change, 5 gallery_change,
// 6 erasure), the byte the log's record header carries too: codes are on
// disk, so vocab never renumbers them, and projections only reads them from
// there. Integers are big-endian. ts_ms is validated positive at ingest, so
// its unsigned encoding sorts numerically. Sources are printable, so 0x00
// terminates them unambiguously. A detection type filter does not read the
// type index: it is not selective, and scanning the log beats a seek per
// match (see Query). The operators' action types are rare, so their pages,
// retention's search for state records and the replay of watchlist
// changes at start read it.
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
// holds the smallest and largest ts_ms of its live records, how many are
// live and how many of those are detections (det; a 24-byte summary,
// written before operators' actions were events, has none: all its
// records are detections). A scan for detections skips blocks with det 0,
// so a bulk of corrections appended together costs a page one summary per
// block instead of a read per record. The summaries are loaded into memory at start (10M events are
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
//     next block up to the first unexpired one, but never past the first
//     state record (watchlist, gallery, erasure events, which never
//     expire). The prefix is read once to delete its detections' history
//     entries (one range deletion per name) and corrections. The log prefix, its
//     snapshots, each type's and each source's index range are deleted with
//     range deletions; the cost depends on the number of types, sources and
//     one block, not on the number of records trimmed.
//  2. late records: every later block with min_ts < cutoff is read and its
//     expired records (detections and corrections) are deleted one by one
//     (with their index entries, history entries and corrections).
//  3. the time index below cutoff is deleted with one range deletion: every
//     record it covers was deleted in step 1 or 2.
//
// # Identities
//
// Operators' actions are events in the same log (vocab's correction,
// watchlist_change, gallery_change, erasure); the views below are
// written by Index/Finish in the batch that appends the event, like every
// index, so a crash never separates them.
//
//   - Corrections ('I' 'c'): one entry per correction of a detection,
//     keyed by the detection's id then the correction's, holding the
//     "correction" member that reads of the detection carry ({"id",
//     "created_at", <fields>, "event_id"}). The newest (the last key of a
//     detection) is kept in memory twice: by the writer (the effect it
//     has on the histories) and for readers (Decorate), who see it only
//     after Committed, once it is durable. The original detection is never
//     rewritten; every read path (Query, Event, the stream's replay, the
//     integrations) splices the member in.
//   - Histories ('I' 'h', 'I' 'n'): each plate read under its normalised
//     plate (vocab.NormalizePlate), each face match under its person
//     name, by the corrected value; a false positive is in none. The key
//     holds the first 16 bytes of the name's SHA-256, never the name:
//     Pebble copies keys where deletion does not reach (table boundaries
//     in the MANIFEST), and an erasure must leave no trace of a name in
//     the store's files; the name is in the value. A
//     correction moves the entry in the batch that appends it. The value
//     (ts_ms, camera) lets aggregates (count, first and last seen,
//     cameras) be read from the key range alone. Pages of a history are
//     Query with Plate or Person set: the range drives, records are read
//     from the log.
//     A store written before the histories existed has no 'I' 'v' key (or
//     an older version there):
//     Attach writes its detections' entries once, in chunks of exclusive
//     updates, then the key (verify skips the completeness check until
//     then).
//   - Plate search: an in-memory index (package platesearch) of the
//     distinct plates of 'I' 'h', built on the first search, fed by
//     Committed, rebuilt after retention; each hit is checked against its
//     history range, so a plate whose reads went is never answered.
//   - Watchlists: the newest watchlist_change per list and matching key
//     (vocab.PlateKey), in memory, replayed at Attach from the type index;
//     ingest/watchlist consults it before the watchlist files.
//
// Only detections and corrections expire (vocab.Expires): a correction
// carries its detection's ts_ms, so it goes with it. Watchlist, gallery
// and erasure events are state and are never deleted by retention (the
// prefix stops at the first of them; see Retention).
//
// # Erasure
//
// ErasureTargets lists, in an exclusive update that only reads, the ids
// of every record of a name: the detections listed under it in its
// history or recorded under it before a correction moved them, their
// corrections, every older correction that named it, and the person's
// gallery changes (the plate's watchlist changes). The caller appends an
// erasure event carrying those ids; indexing it deletes the records (blob,
// index entries, history entries, corrections) in the batch that appends
// it, and Committed rebuilds the watchlist and gallery states from their
// remaining events. In cluster mode every node does this when it applies
// the event. Block summaries keep their ts bounds (only looser) and lose
// the live counts. The server then scrubs the store (eventlog.Log.Scrub).
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
