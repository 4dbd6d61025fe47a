package eventlog

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Erasure on request must leave no trace of what it erased in the store
// directory's files. Deleting keys is not enough for that in an LSM:
//
//   - the WAL holds the original writes until the memtable is flushed and
//     the file is deleted, and Pebble by default recycles an obsolete WAL
//     file by overwriting it from the start, so its old tail (with old
//     records) survives inside the next log file;
//   - a deleted key's old value stays in every table below its tombstone
//     until a compaction of its range reaches the bottom level, and the
//     tombstones themselves carry the deleted keys (history keys hold a
//     person's name) until then.
//
// So the log gives Pebble a file system on which reusing a file is
// deleting it and creating a new one (noReuseFS), and Scrub, run after an
// erasure's deletions have committed, flushes the memtable (so the WALs
// holding the old writes and the deletions become obsolete), compacts the
// whole key space to the bottom level (dropping the deleted values and
// their tombstones) and waits until Pebble has deleted every obsolete
// file. The price is a rewrite of the store per erasure, and WAL files
// allocated fresh instead of reused.

// noReuseFS is a file system whose ReuseForWrite (Pebble's recycling of
// an obsolete WAL file) removes the old file and creates the new one, so
// no log file starts with another's bytes.
type noReuseFS struct{ vfs.FS }

func (fs noReuseFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.Remove(oldname); err != nil {
		return nil, err
	}
	return fs.Create(newname, category)
}

// scrubWait bounds how long Scrub waits for Pebble's background deletion
// of obsolete files, which is not paced here and normally ends at once.
const scrubWait = 30 * time.Second

// Scrub makes every deleted key and value leave the store's files (see
// above). Appends go on meanwhile; it is for erasures, not a hot path.
func (l *Log) Scrub(ctx context.Context) error {
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("eventlog: scrub: flush: %w", err)
	}
	if err := l.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("eventlog: scrub: compact: %w", err)
	}
	deadline := time.Now().Add(scrubWait)
	for {
		m := l.db.Metrics()
		if m.Table.ZombieCount == 0 && m.Table.ObsoleteCount == 0 && m.WAL.ObsoleteFiles == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("eventlog: scrub: obsolete files not deleted after %v", scrubWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
