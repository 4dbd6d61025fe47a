// Package watchlist holds the plate whitelist and blacklist that plate_read
// events are looked up in: the verdict is the event's list_match. The
// ingest path (through its list-matching interface) and the vision
// pipeline look plates up here; the verdicts are internal/vocab's.
//
// # Files
//
// Each list is a text file with one plate per line. Blank lines and lines
// whose first non-space character is '#' are ignored; a '#' after a plate
// starts a trailing comment. Either path may be empty (that list is empty).
//
// # Matching
//
// Plates are compared by [Key]: upper-cased, everything that is not a letter
// or digit dropped (spaces, dashes, dots), and the characters that OCR
// routinely confuses mapped to one canonical class each:
//
//	O, 0 → 0    I, 1 → 1    B, 8 → 8    S, 5 → 5
//
// so "ab-c 1O5" on a list matches an OCR read of "A8C105". The price is that
// two real plates that differ only inside one class ("AB1" and "A81") are
// the same entry; for a watchlist a false hit that a person checks is
// cheaper than a missed blacklisted car.
//
// A plate on both lists is reported as [vocab.Blacklist]: the blacklist
// wins, so a mistake in the whitelist can never hide a wanted vehicle.
//
// # Reloading
//
// [Watchlist.Run] polls the files' size and modification time every
// Options.PollInterval and reloads a list that changed; [Watchlist.Reload]
// reloads both at once (SIGHUP). Polling was chosen over fsnotify on
// purpose: it needs no dependency, it survives editors and deploy tools
// that replace the file by rename and Kubernetes ConfigMap symlink swaps
// (which an inotify watch on the old inode misses), it works on network
// and bind mounts, and two stat calls every few seconds cost nothing. A
// reload that fails (file unreadable or removed) keeps the previous list
// in force, logs at Warn and is retried at the next change.
//
// # Concurrency
//
// Match is lock-free (the lists are an immutable snapshot behind an atomic
// pointer) and may be called from any goroutine while Run or Reload swap in
// new lists.
package watchlist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/vocab"
)

// DefaultPollInterval is how often Run checks the files for changes: short
// enough that an operator who edits a list sees it applied "at once", long
// enough to be free.
const DefaultPollInterval = 3 * time.Second

// MaxFileBytes caps one list file: a watchlist is thousands of plates, not
// gigabytes; a wrong path (a log file, a disk image) must not eat memory.
const MaxFileBytes = 64 << 20

// Options configures a Watchlist. The zero value is an empty watchlist.
type Options struct {
	// Whitelist and Blacklist are file paths; empty means no such list.
	Whitelist string
	Blacklist string
	// PollInterval is the change-detection period of Run
	// (default DefaultPollInterval).
	PollInterval time.Duration
	// Logger receives reload messages (default slog.Default()).
	Logger *slog.Logger
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.PollInterval < 0 {
		return fmt.Errorf("watchlist: poll interval %v is negative", o.PollInterval)
	}
	if o.Whitelist != "" && o.Whitelist == o.Blacklist {
		return fmt.Errorf("watchlist: whitelist and blacklist are the same file %q", o.Whitelist)
	}
	return nil
}

// fileState identifies a version of a file cheaply.
type fileState struct {
	size    int64
	modTime time.Time
	exists  bool
}

// lists is an immutable snapshot.
type lists struct {
	white, black map[string]struct{}
}

// Watchlist matches plates against a whitelist and a blacklist.
type Watchlist struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[lists]
	over atomic.Pointer[Overrides]

	mu struct {
		sync.Mutex
		// white and black are the parsed lists of the last successful
		// load of each file, and the file state they were read at.
		white, black           map[string]struct{}
		whiteState, blackState fileState
	}
}

var _ ingest.ListMatcher = (*Watchlist)(nil)

// New loads both lists. A path that is set but cannot be read is an error:
// an operator who configured a blacklist wants to know at start that it is
// not in force.
func New(opts Options) (*Watchlist, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watchlist{opts: opts, log: opts.Logger}
	w.mu.white, w.mu.black = map[string]struct{}{}, map[string]struct{}{}
	w.cur.Store(&lists{white: w.mu.white, black: w.mu.black})
	if err := w.Reload(); err != nil {
		return nil, err
	}
	return w, nil
}

// Overrides is the API's word on plates: PUT and DELETE
// /watchlists/{list}/{plate} (watchlist_change events, which
// projections.View keeps). For a key the API has changed it wins over the
// files, in both directions, until the API changes it again; the files
// decide every other key. So the files are a seed: an operator who
// removes a file's plate through the API keeps it removed even while the
// file still lists it.
type Overrides interface {
	// WatchOverride reports whether key is on list by the API's word; ok
	// is false when the API never changed it.
	WatchOverride(list, key string) (present, ok bool)
}

// SetOverrides installs the API's changes (nil: the files alone).
func (w *Watchlist) SetOverrides(o Overrides) {
	if o == nil {
		w.over.Store(nil)
		return
	}
	w.over.Store(&o)
}

// Match returns vocab.Blacklist, vocab.Whitelist or "" for plate. The
// blacklist wins when a plate is on both lists.
func (w *Watchlist) Match(plate string) string {
	k := Key(plate)
	if k == "" {
		return ""
	}
	l := w.cur.Load()
	var o Overrides
	if p := w.over.Load(); p != nil {
		o = *p
	}
	on := func(list string, file map[string]struct{}) bool {
		if o != nil {
			if present, ok := o.WatchOverride(list, k); ok {
				return present
			}
		}
		_, ok := file[k]
		return ok
	}
	if on(vocab.Blacklist, l.black) {
		return vocab.Blacklist
	}
	if on(vocab.Whitelist, l.white) {
		return vocab.Whitelist
	}
	return ""
}

// FileKeys returns the matching keys the files put on list, sorted.
func (w *Watchlist) FileKeys(list string) []string {
	l := w.cur.Load()
	m := l.white
	if list == vocab.Blacklist {
		m = l.black
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Len returns the number of distinct keys on each list.
func (w *Watchlist) Len() (white, black int) {
	l := w.cur.Load()
	return len(l.white), len(l.black)
}

// Reload re-reads both files now. On error the list that failed keeps its
// previous content; the errors of both files are returned joined.
func (w *Watchlist) Reload() error {
	return w.reload(true)
}

// reload reads the files; with force false only files whose size or mtime
// changed since the last successful load are read.
func (w *Watchlist) reload(force bool) error {
	// File I/O happens outside the mutex (house rule); the mutex only
	// makes each swap atomic. A Reload (SIGHUP) and a poll may read at the
	// same time and commit in either order, so an older read can win; the
	// next poll sees a changed state and reads the file again.
	type result struct {
		set   map[string]struct{}
		state fileState
		err   error
		read  bool
	}
	load := func(path string, prev fileState) result {
		if path == "" {
			return result{}
		}
		st, err := stat(path)
		if err != nil {
			return result{err: err}
		}
		if !force && st == prev {
			return result{}
		}
		set, err := readFile(path)
		if err != nil {
			return result{err: err}
		}
		// The state recorded is the one stat saw before reading: a file
		// replaced while we read it differs from it, so the next poll
		// reads it again.
		return result{set: set, state: st, read: true}
	}

	w.mu.Lock()
	prevW, prevB := w.mu.whiteState, w.mu.blackState
	w.mu.Unlock()

	rw := load(w.opts.Whitelist, prevW)
	rb := load(w.opts.Blacklist, prevB)

	w.mu.Lock()
	changed := false
	if rw.read {
		w.mu.white, w.mu.whiteState, changed = rw.set, rw.state, true
	}
	if rb.read {
		w.mu.black, w.mu.blackState, changed = rb.set, rb.state, true
	}
	if changed {
		w.cur.Store(&lists{white: w.mu.white, black: w.mu.black})
	}
	nw, nb := len(w.mu.white), len(w.mu.black)
	w.mu.Unlock()

	var errs []error
	if rw.err != nil {
		errs = append(errs, fmt.Errorf("watchlist: whitelist: %w", rw.err))
	}
	if rb.err != nil {
		errs = append(errs, fmt.Errorf("watchlist: blacklist: %w", rb.err))
	}
	if changed {
		w.log.Info("watchlist loaded", "whitelist", w.opts.Whitelist, "whitelist_plates", nw,
			"blacklist", w.opts.Blacklist, "blacklist_plates", nb)
	}
	return errors.Join(errs...)
}

// Run polls the files every PollInterval and reloads the ones that changed,
// until ctx is done. It returns nil on cancellation.
func (w *Watchlist) Run(ctx context.Context) error {
	if w.opts.Whitelist == "" && w.opts.Blacklist == "" {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(w.opts.PollInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := w.reload(false)
		// Log a failure once per distinct error, not every poll: a
		// removed file would otherwise log every few seconds forever.
		switch {
		case err != nil && err.Error() != lastErr:
			w.log.Warn("watchlist reload failed; keeping previous lists", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

func stat(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}, err
	}
	if fi.IsDir() {
		return fileState{}, fmt.Errorf("%s is a directory", path)
	}
	return fileState{size: fi.Size(), modTime: fi.ModTime(), exists: true}, nil
}

func readFile(path string) (map[string]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set, err := Parse(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// Parse reads a list file: one plate per line, blank lines and '#'
// comments ignored. It returns the set of plate keys (see Key).
func Parse(r io.Reader) (map[string]struct{}, error) {
	set := map[string]struct{}{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var n int64
	for sc.Scan() {
		line := sc.Text()
		n += int64(len(line)) + 1
		if n > MaxFileBytes {
			return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if k := Key(line); k != "" {
			set[k] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return set, nil
}

// Normalize is vocab.NormalizePlate: the plate_text normalisation (no
// confusion classes).
func Normalize(plate string) string { return vocab.NormalizePlate(plate) }

// Key is vocab.PlateKey, the matching key of a plate: Normalize, then the
// OCR confusion classes O/0→0, I/1→1, B/8→8, S/5→5. Two plates match when
// their keys are equal.
func Key(plate string) string { return vocab.PlateKey(plate) }
