package eventlog

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ErrNotFound reports a missing record or blob.
var ErrNotFound = errors.New("eventlog: not found")

// Iter iterates keys in [lower, upper). It is not safe for concurrent use.
// Key and Value are valid until the next positioning call.
type Iter struct{ it *pebble.Iterator }

func (i *Iter) First() bool             { return i.it.First() }
func (i *Iter) Last() bool              { return i.it.Last() }
func (i *Iter) Next() bool              { return i.it.Next() }
func (i *Iter) Prev() bool              { return i.it.Prev() }
func (i *Iter) SeekGE(k []byte) bool    { return i.it.SeekGE(k) }
func (i *Iter) SeekLT(k []byte) bool    { return i.it.SeekLT(k) }
func (i *Iter) Valid() bool             { return i.it.Valid() }
func (i *Iter) Key() []byte             { return i.it.Key() }
func (i *Iter) Value() []byte           { return i.it.Value() }
func (i *Iter) Error() error            { return i.it.Error() }
func (i *Iter) Close() error            { return i.it.Close() }
func (i *Iter) SetBounds(lo, up []byte) { i.it.SetBounds(lo, up) }

// NewIter iterates raw keys in [lower, upper) of the committed store. Keys
// may include records above the committed watermark (applied, not yet
// synced): callers that read records by index clamp ids to LastID.
func (l *Log) NewIter(lower, upper []byte) (*Iter, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("eventlog: iterator: %w", err)
	}
	return &Iter{it}, nil
}

// NewLogIter iterates the records with ids in [from, to], clamped to the
// low-water id and the committed watermark. Values decode with SplitValue.
func (l *Log) NewLogIter(from, to uint64) (*Iter, error) {
	if low := l.low.Load(); from < low {
		from = low
	}
	if last := l.last.Load(); to > last {
		to = last
	}
	if to < from {
		// An empty range still yields a valid, empty iterator.
		return l.NewIter(LogKey(from), LogKey(from))
	}
	return l.NewIter(LogKey(from), LogKey(to+1))
}

// ID returns the id of the log key at which it stands.
func KeyID(k []byte) uint64 {
	id, _ := idFromKey(k)
	return id
}

// Get returns a copy of record id's stored value (header and JSON).
func (l *Log) Get(id uint64) ([]byte, error) {
	if id == 0 || id < l.low.Load() || id > l.last.Load() {
		return nil, ErrNotFound
	}
	return l.getCopy(LogKey(id))
}

// Snapshot returns record id's blob.
func (l *Log) Snapshot(id uint64) ([]byte, error) {
	if id == 0 || id < l.low.Load() || id > l.last.Load() {
		return nil, ErrNotFound
	}
	return l.getCopy(SnapshotKey(id))
}

func (l *Log) getCopy(k []byte) ([]byte, error) {
	v, c, err := l.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("eventlog: get: %w", err)
	}
	out := append([]byte(nil), v...)
	return out, c.Close()
}

// Tx is the exclusive view handed to an Update function: reads see every
// applied record (the writer is paused), writes go to one batch committed
// with Sync when the function returns nil.
type Tx struct {
	l   *Log
	b   *pebble.Batch
	low uint64
	// Counts of what the update wrote, for tests and metrics.
	RangeDeletes, PointDeletes int
}

// NewIter iterates [lower, upper) of the store as the writer sees it.
func (t *Tx) NewIter(lower, upper []byte) (*Iter, error) { return t.l.NewIter(lower, upper) }

// Get reads a key; ErrNotFound when absent.
func (t *Tx) Get(k []byte) ([]byte, error) { return t.l.getCopy(k) }

// State is the log's extent as the writer sees it: Last includes applied
// records that may still be syncing.
func (t *Tx) State() State { return State{First: t.l.low.Load(), Last: t.l.next - 1} }

func (t *Tx) Set(k, v []byte) error { return t.b.Set(k, v, nil) }
func (t *Tx) Delete(k []byte) error { t.PointDeletes++; return t.b.Delete(k, nil) }
func (t *Tx) DeleteRange(s, e []byte) error {
	t.RangeDeletes++
	return t.b.DeleteRange(s, e, nil)
}

// DeleteRecord deletes record id and its blob (index entries are the
// caller's).
func (t *Tx) DeleteRecord(id uint64) error {
	if err := t.Delete(LogKey(id)); err != nil {
		return err
	}
	return t.Delete(SnapshotKey(id))
}

// TrimPrefix deletes every record and blob with id < upTo by range
// deletion and raises the persisted low-water id to upTo.
func (t *Tx) TrimPrefix(upTo uint64) error {
	low := t.l.low.Load()
	if upTo <= low {
		return nil
	}
	if err := t.DeleteRange(LogKey(low), LogKey(upTo)); err != nil {
		return err
	}
	if err := t.DeleteRange(SnapshotKey(low), SnapshotKey(upTo)); err != nil {
		return err
	}
	t.low = upTo
	return nil
}

// Checkpoint writes a consistent copy of the store into dir (which must
// not exist) while appends continue: Pebble hard-links its immutable
// tables and copies the WAL tail. The copy is a store Open can serve.
func (l *Log) Checkpoint(dir string) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return ErrClosed
	}
	if err := l.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("eventlog: checkpoint %s: %w", dir, err)
	}
	return nil
}
