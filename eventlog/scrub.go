package eventlog

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"

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
// So Pebble must delete obsolete files rather than keep WAL files for
// reuse. It recycles unless its Cleaner is one that "needs the files'
// contents", which only its ArchiveCleaner is (the marker method is
// unexported); that cleaner moves obsolete files into an archive
// directory. The log therefore opens Pebble with the ArchiveCleaner and a
// file system (scrubFS) on which moving a file into that directory
// deletes it. Scrub, run after an erasure's deletions have committed,
// flushes the memtable (so the WALs holding the old writes and the
// deletions become obsolete), compacts the whole key space to the bottom
// level (dropping the deleted values and their tombstones) and waits
// until Pebble has deleted every obsolete file. The price is a rewrite of
// the store per erasure, and WAL files allocated fresh instead of reused.

// archiveDir is the directory name pebble.ArchiveCleaner moves obsolete
// files into (Pebble uses the name for nothing else).
const archiveDir = "archive"

// scrubFS turns the ArchiveCleaner's "archive this file" into "delete
// it": creating the archive directory does nothing, and renaming a file
// into it removes the file.
type scrubFS struct{ vfs.FS }

func (fs scrubFS) MkdirAll(dir string, perm os.FileMode) error {
	if fs.PathBase(dir) == archiveDir {
		return nil
	}
	return fs.FS.MkdirAll(dir, perm)
}

func (fs scrubFS) Rename(oldname, newname string) error {
	if fs.PathBase(fs.PathDir(newname)) == archiveDir {
		return fs.Remove(oldname)
	}
	return fs.FS.Rename(oldname, newname)
}

// scrubSentinels are the smallest and the largest key (no family uses
// 0x00 or 0xff).
var scrubSentinels = [2][]byte{{0x00}, {0xff, 0xff}}

// scrubWait bounds how long Scrub waits for Pebble's background deletion
// of obsolete files, which is not paced here and normally ends at once.
const scrubWait = 30 * time.Second

// Scrub makes every deleted key and value leave the store's files (see
// above). Appends go on meanwhile; it is for erasures, not a hot path.
func (l *Log) Scrub(ctx context.Context) error {
	// A manual compaction moves a table down without rewriting it when
	// nothing below overlaps it, tombstones (and the names in their keys)
	// included. Two deleted sentinels at both ends of the key space give
	// the flushed table a range that overlaps every table, so the
	// compaction rewrites them all, down to the bottom level, where the
	// tombstones and the values they delete are dropped.
	// The sentinels get a table of their own (a table holding everything
	// overlaps nothing and would move down as it is): flush first.
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("eventlog: scrub: flush: %w", err)
	}
	b := l.db.NewBatch()
	for _, k := range scrubSentinels {
		b.Set(k, nil, nil)
		b.Delete(k, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("eventlog: scrub: %w", err)
	}
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("eventlog: scrub: flush: %w", err)
	}
	if err := l.db.Compact(ctx, scrubSentinels[0], append(scrubSentinels[1], 0), true); err != nil {
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
