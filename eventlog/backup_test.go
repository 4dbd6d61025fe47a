package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
)

// backupStore is an on-disk store holding n events.
func backupStore(t *testing.T, n int) *storetest.Store {
	t.Helper()
	s := storetest.Open(t, storetest.Options{})
	evs := make([]ingest.Event, n)
	for i := range evs {
		evs[i] = storetest.Face("cam", time.Now().UnixMilli(), fmt.Sprintf("p%d", i))
	}
	if n > 0 {
		if _, err := s.Ingest.Append(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fixedClock returns at, then at plus step for each later call.
func fixedClock(at time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := at
		at = at.Add(step)
		return t
	}
}

// checkBackup opens dir/name read-only and reads it up to lastID.
func checkBackup(t *testing.T, dir, name string, lastID uint64) {
	t.Helper()
	p := filepath.Join(dir, name)
	if m, _ := filepath.Glob(filepath.Join(p, "MANIFEST-*")); len(m) == 0 {
		t.Fatalf("%s has no MANIFEST", name)
	}
	l, err := eventlog.Open(eventlog.Options{URL: p, ReadOnly: true, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer l.Close()
	if l.LastID() < lastID {
		t.Fatalf("%s: last id %d < %d", name, l.LastID(), lastID)
	}
	if lastID > 0 {
		if _, err := l.Get(lastID); err != nil {
			t.Fatalf("%s: event %d: %v", name, lastID, err)
		}
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestBackupNamesNeverRepeat: with a clock stuck on one millisecond, and a
// backup of that millisecond already on disk (as an earlier process would
// leave it), every Run takes a new name and the old directory is untouched.
func TestBackupNamesNeverRepeat(t *testing.T) {
	s := backupStore(t, 10)
	dir := filepath.Join(t.TempDir(), "backups")
	at := time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)
	earlier := filepath.Join(dir, "events-20240102T030405.006Z-1")
	if err := os.MkdirAll(earlier, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(earlier, "mine"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 100, Now: fixedClock(at, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 4; i++ {
		res, err := b.Run()
		if err != nil {
			t.Fatal(err)
		}
		if res.LastID != 10 || res.Path != filepath.Join(dir, res.Name) {
			t.Fatalf("result %+v", res)
		}
		checkBackup(t, dir, res.Name, res.LastID)
		got = append(got, res.Name)
	}
	want := []string{"events-20240102T030405.006Z-2", "events-20240102T030405.006Z-3",
		"events-20240102T030405.006Z-4", "events-20240102T030405.006Z-5"}
	if !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(earlier, "mine")); err != nil || string(b) != "x" {
		t.Fatalf("the earlier directory changed: %q %v", b, err)
	}
}

// TestBackupConcurrentRuns: 8 goroutines call Run at once, repeatedly.
// Each call either writes a complete backup under a name no other call
// got, or fails with ErrBackupRunning; nothing else is left in the folder.
func TestBackupConcurrentRuns(t *testing.T) {
	s := backupStore(t, 50)
	dir := filepath.Join(t.TempDir(), "backups")
	b, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 1000,
		Now: fixedClock(time.Now(), 0)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		oks  []eventlog.BackupResult
		busy int
		wg   sync.WaitGroup
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				res, err := b.Run()
				mu.Lock()
				switch {
				case err == nil:
					oks = append(oks, res)
				case errors.Is(err, eventlog.ErrBackupRunning):
					busy++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var names []string
	for _, r := range oks {
		checkBackup(t, dir, r.Name, r.LastID)
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Fatalf("a name was given twice: %v", names)
	}
	if on := entries(t, dir); !slices.Equal(on, names) {
		t.Fatalf("folder holds %v, the calls answered %v", on, names)
	}
	t.Logf("%d backups, %d refused as running", len(oks), busy)
}

// TestBackupRotationKeepsNewest: with Keep 3 only the 3 newest backups
// stay, a backup named by an earlier version is rotated with them, and
// nothing that does not carry a backup's name, nor a file or a symlink
// that does, is touched.
func TestBackupRotationKeepsNewest(t *testing.T) {
	s := backupStore(t, 5)
	root := t.TempDir()
	dir := filepath.Join(root, "backups")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "notes"), filepath.Join(dir, "events-manual"),
		filepath.Join(dir, "events-20000101T000000.000Z")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{filepath.Join(dir, "events-20000101T000000.000Z-1"), filepath.Join(outside, "keep")}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "events-19990101T000000.000Z-1")); err != nil {
		t.Fatal(err)
	}
	b, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 3,
		Now: fixedClock(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for i := 0; i < 5; i++ {
		res, err := b.Run()
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, res.Name)
		list, err := b.List()
		if err != nil {
			t.Fatal(err)
		}
		want := append([]string{"events-20000101T000000.000Z"}, made...)
		want = want[max(0, len(want)-3):]
		if !slices.Equal(list, want) {
			t.Fatalf("after backup %d: %v, want %v", i+1, list, want)
		}
	}
	for _, n := range made[2:] {
		checkBackup(t, dir, n, 5)
	}
	want := []string{"events-19990101T000000.000Z-1", "events-20000101T000000.000Z-1", "events-manual", "notes"}
	want = append(want, made[2:]...)
	slices.Sort(want)
	if on := entries(t, dir); !slices.Equal(on, want) {
		t.Fatalf("folder holds %v, want %v", on, want)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("rotation removed %s: %v", f, err)
		}
	}
}

// TestBackupRotationKeepsTheNewBackupWhenTheClockWentBack: the backup just
// written stays even when its name sorts before the others.
func TestBackupRotationKeepsTheNewBackupWhenTheClockWentBack(t *testing.T) {
	s := backupStore(t, 1)
	dir := filepath.Join(t.TempDir(), "backups")
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	b1, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 2, Now: fixedClock(at, time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := b1.Run(); err != nil {
			t.Fatal(err)
		}
	}
	b2, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 2, Now: fixedClock(at.Add(-time.Hour), 0)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b2.Run()
	if err != nil {
		t.Fatal(err)
	}
	list, _ := b2.List()
	if want := []string{res.Name, "events-20240506T070810.000Z-1"}; !slices.Equal(list, want) {
		t.Fatalf("after a backup from an earlier clock: %v, want %v", list, want)
	}
}

// TestBackupFailureLeavesNothing: a backup that fails (here: the store is
// closed) removes its own reservation and staging directory and nothing
// else, and answers an error.
func TestBackupFailureLeavesNothing(t *testing.T) {
	s := backupStore(t, 1)
	dir := filepath.Join(t.TempDir(), "backups")
	b, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: dir, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	good, err := b.Run()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Log.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Run(); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("backup of a closed store: %v", err)
	}
	if on := entries(t, dir); !slices.Equal(on, []string{good.Name}) {
		t.Fatalf("after a failed backup the folder holds %v", on)
	}
	checkBackup(t, dir, good.Name, 1)
}

func TestNewBackupsRefuses(t *testing.T) {
	s := backupStore(t, 0)
	if _, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log, Dir: t.TempDir(), Keep: 0}); err == nil {
		t.Fatal("Keep 0 accepted")
	}
	if _, err := eventlog.NewBackups(eventlog.BackupOptions{Log: s.Log}); err == nil {
		t.Fatal("no Dir accepted")
	}
	mem := storetest.Open(t, storetest.Options{FS: vfs.NewMem()})
	if _, err := eventlog.NewBackups(eventlog.BackupOptions{Log: mem.Log, Dir: t.TempDir(), Keep: 1}); !errors.Is(err, eventlog.ErrBackupInMemory) {
		t.Fatalf("memory store: %v", err)
	}
	l, err := eventlog.Open(eventlog.Options{URL: "memory://"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := eventlog.NewBackups(eventlog.BackupOptions{Log: l, Dir: t.TempDir(), Keep: 1}); !errors.Is(err, eventlog.ErrBackupInMemory) {
		t.Fatalf("memory:// store: %v", err)
	}
	if strings.Contains(eventlog.ErrBackupRunning.Error(), "/") {
		t.Fatal("ErrBackupRunning names a path")
	}
}
