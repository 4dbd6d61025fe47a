package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Backup errors.
var (
	// ErrBackupRunning is returned by Backups.Run while another backup of
	// the same Backups is in progress: backups never queue.
	ErrBackupRunning = errors.New("eventlog: a backup is already running")
	// ErrBackupInMemory is returned by NewBackups for a store that is not
	// on the operating system's file system: its checkpoint would be
	// written to the same memory and lost at exit.
	ErrBackupInMemory = errors.New("eventlog: backups need a store on disk")
)

// backupTimeFormat is the UTC time in a backup's name, to the millisecond.
const backupTimeFormat = "20060102T150405.000Z"

// backupName matches the names Backups gives: "events-<time>-<n>". Names
// without "-<n>" were written by earlier versions and are rotated too.
var backupName = regexp.MustCompile(`^events-(\d{8}T\d{6}\.\d{3}Z)(?:-([1-9][0-9]{0,8}))?$`)

// maxNameTries bounds the search for a free name within one millisecond:
// each try that fails found a real directory, so reaching it means
// something else is filling the folder with our names.
const maxNameTries = 10000

// BackupOptions configure NewBackups.
type BackupOptions struct {
	// Log is the store to back up; it must be on disk.
	Log *Log
	// Dir holds the backups; it is created when missing.
	Dir string
	// Keep is how many of the newest backups in Dir survive each
	// successful backup (the new one among them); at least 1.
	Keep int
	// Now is the clock for names; nil means time.Now.
	Now func() time.Time
	// Logger receives what rotation removed or failed to remove; nil
	// discards.
	Logger *slog.Logger
}

// BackupResult describes a backup that was written.
type BackupResult struct {
	// Name is the backup's directory inside Dir.
	Name string
	// Path is Dir joined with Name, for the server's own log.
	Path string
	// LastID is the newest event id the backup is known to hold; appends
	// that raced with the checkpoint may be in it too.
	LastID uint64
	// Removed are the older backups rotation deleted.
	Removed []string
}

// Backups writes checkpoints of a Log into a directory, one at a time, and
// keeps the newest few.
//
// It sits beside Checkpoint because its safety rests on Pebble's rules for
// the destination: the destination must not exist, and a checkpoint that
// fails removes its destination whole. So a backup is never checkpointed
// straight to its final name. Run first reserves the name with an
// exclusive mkdir (a name already on disk, from this process or an earlier
// one, is skipped), checkpoints into a private staging directory made by
// MkdirTemp, and then renames the finished store over its own empty
// reservation. A failing checkpoint can therefore only remove the staging
// directory it was given, and the final name never shows a half-written
// store.
type Backups struct {
	opts BackupOptions
	now  func() time.Time
	log  *slog.Logger
	mu   sync.Mutex // held for a whole Run; taken with TryLock
}

// NewBackups checks the options.
func NewBackups(opts BackupOptions) (*Backups, error) {
	if opts.Log == nil || opts.Dir == "" {
		return nil, errors.New("eventlog: backups need a Log and a Dir")
	}
	if opts.Keep < 1 {
		return nil, fmt.Errorf("eventlog: backups must keep at least 1, not %d", opts.Keep)
	}
	if opts.Log.opts.FS != nil {
		return nil, ErrBackupInMemory
	}
	if _, mem, err := ParseURL(opts.Log.opts.URL); err != nil || mem {
		return nil, ErrBackupInMemory
	}
	b := &Backups{opts: opts, now: opts.Now, log: opts.Logger}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// Run writes a new backup and then rotates: of the directories in Dir
// that carry a backup's name, only the newest Keep remain. While another
// Run is in progress it returns ErrBackupRunning at once. A rotation
// failure is logged, not returned: the new backup is complete.
func (b *Backups) Run() (BackupResult, error) {
	if !b.mu.TryLock() {
		return BackupResult{}, ErrBackupRunning
	}
	defer b.mu.Unlock()
	dir := b.opts.Dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return BackupResult{}, fmt.Errorf("eventlog: backup dir: %w", err)
	}
	name, err := b.reserve()
	if err != nil {
		return BackupResult{}, err
	}
	final := filepath.Join(dir, name)
	last := b.opts.Log.LastID()
	if err := b.write(final); err != nil {
		// The reservation is ours and still empty; Remove refuses to
		// delete a directory that is not.
		_ = os.Remove(final)
		return BackupResult{}, err
	}
	res := BackupResult{Name: name, Path: final, LastID: last}
	res.Removed = b.rotate(name)
	return res, nil
}

// reserve creates an empty directory under a name no directory in Dir has
// had: the time to the millisecond and the first free sequence number.
func (b *Backups) reserve() (string, error) {
	ts := b.now().UTC().Format(backupTimeFormat)
	for n := 1; n <= maxNameTries; n++ {
		name := "events-" + ts + "-" + strconv.Itoa(n)
		err := os.Mkdir(filepath.Join(b.opts.Dir, name), 0o750)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("eventlog: reserve backup name: %w", err)
		}
	}
	return "", fmt.Errorf("eventlog: no free backup name for %s in %s", ts, b.opts.Dir)
}

// write checkpoints into a staging directory of its own and renames the
// result onto final, the empty directory reserve made (rename replaces an
// empty directory). The staging directory is removed in every case.
func (b *Backups) write(final string) (err error) {
	staging, err := os.MkdirTemp(b.opts.Dir, ".staging-"+filepath.Base(final)+"-")
	if err != nil {
		return fmt.Errorf("eventlog: backup staging: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(staging); rerr != nil && err == nil {
			err = fmt.Errorf("eventlog: remove backup staging: %w", rerr)
		}
	}()
	store := filepath.Join(staging, "store")
	if err := b.opts.Log.Checkpoint(store); err != nil {
		return err
	}
	// syscall.Rename, not os.Rename: os.Rename refuses any existing
	// directory as the target, while rename(2) replaces an empty one in a
	// single step (and fails, harmlessly, on one that is not empty).
	if err := syscall.Rename(store, final); err != nil {
		return fmt.Errorf("eventlog: publish backup: %w", &os.LinkError{Op: "rename", Old: store, New: final, Err: err})
	}
	// The rename is a change to Dir: sync it so that the name survives a
	// crash as the checkpoint's files do.
	return syncDir(b.opts.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("eventlog: sync backup dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("eventlog: sync backup dir: %w", err)
	}
	return nil
}

// List returns the names of the backups in Dir, oldest first: the
// directories (not symlinks or files) whose name matches the pattern Run
// uses, ordered by the time and the sequence number in the name.
func (b *Backups) List() ([]string, error) {
	ents, err := os.ReadDir(b.opts.Dir)
	if err != nil {
		return nil, err
	}
	type named struct {
		name, ts string
		n        int
	}
	var bs []named
	for _, e := range ents {
		m := backupName.FindStringSubmatch(e.Name())
		// ReadDir does not follow symlinks: a link to a directory is not
		// a directory here, and is never ours to remove.
		if m == nil || !e.IsDir() {
			continue
		}
		n := 0
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		bs = append(bs, named{e.Name(), m[1], n})
	}
	slices.SortFunc(bs, func(x, y named) int {
		if c := strings.Compare(x.ts, y.ts); c != 0 {
			return c
		}
		return x.n - y.n
	})
	names := make([]string, len(bs))
	for i, x := range bs {
		names[i] = x.name
	}
	return names, nil
}

// rotate removes all but the newest Keep backups. The backup just written
// (keep) always stays, even when a clock that went back gives it an older
// name than others.
func (b *Backups) rotate(keep string) []string {
	names, err := b.List()
	if err != nil {
		b.log.Warn("backup rotation: list", "err", err)
		return nil
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == keep })
	var removed []string
	for _, n := range names[:max(0, len(names)-(b.opts.Keep-1))] {
		if err := os.RemoveAll(filepath.Join(b.opts.Dir, n)); err != nil {
			b.log.Warn("backup rotation: remove", "backup", n, "err", err)
			continue
		}
		removed = append(removed, n)
	}
	if len(removed) > 0 {
		b.log.Info("backup rotation", "removed", removed, "keep", b.opts.Keep)
	}
	return removed
}
