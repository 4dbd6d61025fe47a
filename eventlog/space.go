package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// minFreeBytes is the free space Open insists on beyond twice the WAL: room
// for a new manifest and OPTIONS file.
const minFreeBytes = 1 << 20

// ErrDiskFull is returned by Open when the store's disk cannot hold the
// WAL replay. Pebble (v2.1.7) replays the WAL into a memtable and flushes
// it while opening; on a full disk that flush fails with ENOSPC and is
// retried forever, so Open would never return. Refusing early turns a hang
// into a clear message.
var ErrDiskFull = errors.New("eventlog: not enough free disk space to open the store")

// checkFreeSpace compares the free space of dir's file system with what
// replaying dir's WAL needs.
func checkFreeSpace(dir string) error {
	var st syscall.Statfs_t
	probe := dir
	for {
		err := syscall.Statfs(probe, &st)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENOENT) {
			return nil // cannot tell: let Pebble try
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return nil
		}
		probe = parent // a new store: the directory does not exist yet
	}
	free := st.Bavail * uint64(st.Bsize)
	var wal uint64
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			if info, err := e.Info(); err == nil {
				wal += uint64(info.Size())
			}
		}
	}
	if need := 2*wal + minFreeBytes; free < need {
		return fmt.Errorf("%w: %s has %d MiB free, replaying its %d MiB write-ahead log needs about %d MiB: free disk space, then start again",
			ErrDiskFull, dir, free>>20, wal>>20, need>>20)
	}
	return nil
}
