package eventlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBackupRefusesWhileRunning: a Run that finds another in progress
// answers ErrBackupRunning at once, without waiting and without writing.
func TestBackupRefusesWhileRunning(t *testing.T) {
	l, err := Open(Options{URL: filepath.Join(t.TempDir(), "store"), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "backups")
	b, err := NewBackups(BackupOptions{Log: l, Dir: dir, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock() // as a Run in progress holds it
	if _, err := b.Run(); !errors.Is(err, ErrBackupRunning) {
		t.Fatalf("second backup: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused backup touched the folder: %v", err)
	}
	b.mu.Unlock()
	if _, err := b.Run(); err != nil {
		t.Fatal(err)
	}
}
