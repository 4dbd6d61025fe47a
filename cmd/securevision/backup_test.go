package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func postBackup(t *testing.T, base string) (int, []byte) {
	t.Helper()
	r, err := http.Post(base+"/backup", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// TestServeBackupAnswersRelativeName: the answer names the backup inside
// BACKUP_DIR, never by its absolute path, and BACKUP_KEEP rotates.
func TestServeBackupAnswersRelativeName(t *testing.T) {
	root := t.TempDir()
	backups := filepath.Join(root, "backups")
	s := startServer(t, "SECUREVISION__EVENTS__DB_URL=pebble://"+filepath.Join(root, "events"),
		"SECUREVISION__EVENTS__BACKUP_DIR="+backups, "SECUREVISION__EVENTS__BACKUP_KEEP=2")
	s.ingest(t, seedEvents)
	var names []string
	for i := 0; i < 3; i++ {
		code, body := postBackup(t, s.base)
		var res struct {
			Path   string `json:"path"`
			LastID uint64 `json:"last_id"`
		}
		if err := json.Unmarshal(body, &res); err != nil || code != 200 || res.LastID != 2 {
			t.Fatalf("backup: %d %s %v", code, body, err)
		}
		if strings.Contains(string(body), root) || filepath.IsAbs(res.Path) || filepath.Base(res.Path) != res.Path {
			t.Fatalf("the answer names a server path: %s", body)
		}
		names = append(names, res.Path)
	}
	ents, err := os.ReadDir(backups)
	if err != nil {
		t.Fatal(err)
	}
	var on []string
	for _, e := range ents {
		on = append(on, e.Name())
	}
	if strings.Join(on, " ") != strings.Join(names[1:], " ") {
		t.Fatalf("backup folder holds %v; answered %v, keep 2", on, names)
	}
}

// TestServeBackupFailureNamesNoPath: when BACKUP_DIR cannot be created
// the answer is a generic 503, without the path.
func TestServeBackupFailureNamesNoPath(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "SECUREVISION__EVENTS__DB_URL=pebble://"+filepath.Join(root, "events"),
		"SECUREVISION__EVENTS__BACKUP_DIR="+filepath.Join(file, "backups"))
	code, body := postBackup(t, s.base)
	if code != 503 || string(body) != `{"detail":"Backup failed: see the server log"}` {
		t.Fatalf("backup into a file: %d %s", code, body)
	}
}

// TestServeBackupOffForMemoryStore: a memory store has nothing on disk to
// back up; POST /backup is not served rather than writing into memory.
func TestServeBackupOffForMemoryStore(t *testing.T) {
	s := startServer(t) // memory://
	if code, body := postBackup(t, s.base); code != 404 {
		t.Fatalf("backup of a memory store: %d %s", code, body)
	}
}
