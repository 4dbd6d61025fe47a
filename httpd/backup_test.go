package httpd_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/testbin"
)

// TestBackupAnswers: a backup already running answers 409 in FastAPI's
// shape; a failed one answers 503 whose detail names no server path, while
// the log keeps the whole error.
func TestBackupAnswers(t *testing.T) {
	const secret = "/srv/secret/backups"
	var logBuf testbin.LockedBuffer
	var next atomic.Pointer[error] // the error the next backup returns
	e := newEnv(t, func(o *httpd.Options) {
		o.Backup = func(context.Context) (any, error) {
			if err := next.Load(); err != nil {
				return nil, *err
			}
			return map[string]any{"path": "events-20240101T000000.000Z-1", "last_id": 0}, nil
		}
		o.Logger = newDebugLogger(&logBuf)
	})
	r := e.do(t, "POST", "/backup", "")
	if r.code != 200 || string(r.body) != `{"last_id":0,"path":"events-20240101T000000.000Z-1"}` {
		t.Fatalf("backup: %d %s", r.code, r.body)
	}

	running := fmt.Errorf("backup: %w", eventlog.ErrBackupRunning)
	next.Store(&running)
	r = e.do(t, "POST", "/backup", "")
	if r.code != 409 || string(r.body) != `{"detail":"A backup is already running: try again when it has finished"}` {
		t.Fatalf("running: %d %s", r.code, r.body)
	}

	failed := fmt.Errorf("eventlog: backup dir: %w", &os.PathError{Op: "mkdir", Path: secret, Err: syscall.ENOTDIR})
	next.Store(&failed)
	r = e.do(t, "POST", "/backup", "")
	if r.code != 503 || string(r.body) != `{"detail":"Backup failed: see the server log"}` {
		t.Fatalf("failed: %d %s", r.code, r.body)
	}
	if !strings.Contains(logBuf.String(), secret) {
		t.Fatalf("the log lacks the error: %s", logBuf.String())
	}
}
