package eventlog

import "context"

// RecordLog is the log of record as the packages above it use it: the
// contract they may rely on, not how Pebble keeps it. *Log implements it;
// a second backend (records in a NATS JetStream stream, say) would too.
//
// Ids. Append assigns the ids: one Append's records get contiguous ids
// first..last, in the order given; ids strictly increase along the log,
// start at 1 and are never reused, across restarts and deletions. The id
// is every reader's cursor.
//
// Atomicity. An Append is stored whole or not at all, and it returns only
// once its records are durable. A failed write is sticky: every later
// Append and Update fails with the same error and Health reports it (an
// Append whose durability is unknown may reappear after a restart, so a
// caller that retries may store it twice; see ingest.ErrUnavailable).
//
// Watermark. LastID is the committed watermark: the newest id whose batch
// is durable. Readers (NewLogIter, Get, Snapshot) never see a record above
// it, so nothing they read can be lost by a crash. State().First is the
// low-water id: nothing below it exists. Between the two, deletions may
// have left holes.
//
// Deletions. Records leave the log only through Update, which runs its
// function exclusively (no Append interleaves) and commits what it wrote
// as one atomic batch: Tx.TrimPrefix deletes the prefix below an id and
// raises the low-water id, Tx.DeleteRecord deletes single records. The
// same Tx writes the views' keys (Tx.Set, Delete, DeleteRange), so a
// deleted record and its index entries go together.
//
// Notification. Each committed batch is reported once, in log order,
// after it is durable and after LastID covers it: first, while the batch
// is built, its records pass through the Indexer (Index per record in id
// order, then Finish), whose writes commit atomically with them; then,
// after the fsync, the batch goes to OnCommit. Both hooks are fixed when
// the log is opened (Options.Indexer, Options.OnCommit), not subscribed
// to afterwards, so that no batch can commit before they are in place;
// package core installs them (projections as the Indexer, then its commit
// bus) and is the only non-test caller of Open. An Update's deletions are
// not reported.
//
// Iter and Tx are this package's types. For the Pebble log they read and
// write the one database that holds records and views alike, and the
// Indexer's Writer is the group commit's batch: that batch is the seam. A
// backend whose records live elsewhere keeps its views in a local store
// and implements Index/Finish and Tx against that store; Iter and Tx would
// then wrap it. They stay concrete here because an interface would cost a
// dynamic call per row on the query path.
type RecordLog interface {
	// Append appends recs atomically and returns their ids once they are
	// durable. It keeps no reference to recs or their bytes.
	Append(ctx context.Context, recs []Record) (first, last uint64, err error)
	// NewLogIter iterates the records with ids in [from, to], clamped to
	// the low-water id and the committed watermark. Keys decode with
	// KeyID, values with SplitValue.
	NewLogIter(from, to uint64) (*Iter, error)
	// Get returns a copy of record id's stored value; ErrNotFound when it
	// is absent or above the watermark.
	Get(id uint64) ([]byte, error)
	// Snapshot returns record id's blob; ErrNotFound when it has none.
	Snapshot(id uint64) ([]byte, error)
	// State is the extent: First the low-water id, Last the watermark.
	State() State
	// LastID is the committed watermark.
	LastID() uint64
	// Update runs fn with exclusive access and commits its writes
	// atomically (deletions, see above).
	Update(ctx context.Context, fn func(*Tx) error) error
	// Health is nil while the log takes writes, else why it does not
	// (the sticky write error, ErrClosed).
	Health() error
}

// Store is a RecordLog with the key space the views live in: what package
// projections reads. NewIter reads raw keys of any family (see doc.go);
// projections reads its own families ('I', 'Z') through it and records
// through NewLogIter, except Verify, which checks every family. For the
// Pebble log both are the same database.
type Store interface {
	RecordLog
	// NewIter iterates raw keys in [lower, upper). Record keys above the
	// watermark may be visible: callers clamp ids read from indexes to
	// LastID.
	NewIter(lower, upper []byte) (*Iter, error)
}

var _ Store = (*Log)(nil)
