package httpd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
)

// faultFS injects errorfs.ErrInjected into the operations that match
// while it is on.
type faultFS struct {
	on    atomic.Bool
	match func(errorfs.Op) bool
	hits  atomic.Int64
}

func (f *faultFS) MaybeError(op errorfs.Op) error {
	if f.on.Load() && f.match(op) {
		f.hits.Add(1)
		return errorfs.ErrInjected
	}
	return nil
}

func (f *faultFS) String() string { return "faultFS" }

func isWAL(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".log") }

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

func faultEvent(i int) string {
	return fmt.Sprintf(`{"type":"plate_read","ts_ms":%d,"frame_source_id":"cam","payload":{"plate_text":"P%d","confidence":0.5}}`, time.Now().UnixMilli(), i)
}

func faultBatch(from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = faultEvent(from + i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestStoreFaults injects write and sync failures under the server:
// POST /ingest answers 503 {"detail": …} with nothing of the batch
// visible, /health turns ok:false with 503, reads go on being served, the
// error sticks after the fault clears (read-only until restart), and after
// a restart every acknowledged event is served and new appends work.
func TestStoreFaults(t *testing.T) {
	cases := []struct {
		name  string
		match func(errorfs.Op) bool
	}{
		{"wal-sync", func(op errorfs.Op) bool { return isWAL(op) && isSync(op.Kind) }},
		{"wal-write", func(op errorfs.Op) bool {
			return isWAL(op) && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt)
		}},
		{"every-write", func(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			ffs := &faultFS{match: tc.match}
			st, err := storetest.OpenErr(dir, storetest.Options{FS: errorfs.Wrap(vfs.Default, ffs)})
			if err != nil {
				t.Fatal(err)
			}
			api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, Gatherer: st.Reg, Registerer: st.Reg})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(api.Handler())
			defer srv.Close()
			post := func(body string) (int, string) {
				r, err := http.Post(srv.URL+"/ingest", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				var b strings.Builder
				_, _ = fmt.Fprint(&b, readAll(t, r))
				return r.StatusCode, b.String()
			}
			get := func(path string) (int, string) {
				r, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				return r.StatusCode, readAll(t, r)
			}
			if code, body := post(faultBatch(0, 10)); code != 200 || body != `{"count":10,"first_id":1,"last_id":10}` {
				t.Fatalf("before fault: %d %s", code, body)
			}

			ffs.on.Store(true)
			code, body := post(faultBatch(10, 5))
			var d struct{ Detail string }
			if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &d) != nil || d.Detail == "" {
				t.Fatalf("under fault: %d %s (injected %d)", code, body, ffs.hits.Load())
			}
			t.Logf("POST /ingest under fault: %d %s", code, body)
			if strings.Contains(d.Detail, "nothing was appended") {
				t.Fatalf("503 claims nothing was appended; after a failed sync the batch may be recovered at restart")
			}
			if code, body := get("/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"ok":false`) {
				t.Fatalf("health under fault: %d %s", code, body)
			}
			// Reads are still served, and show nothing of the failed batch.
			if code, body := get("/events?after=0&limit=1000"); code != 200 || strings.Count(body, `"id":`) != 10 {
				t.Fatalf("events under fault: %d %s", code, body)
			}
			if code, _ := get("/events/10"); code != 200 {
				t.Fatalf("event 10 under fault: %d", code)
			}
			if code, _ := get("/events/11"); code != 404 {
				t.Fatalf("event 11 under fault: %d (failed batch visible)", code)
			}

			// The fault clears; the error sticks until restart.
			ffs.on.Store(false)
			if code, body := post(faultBatch(20, 1)); code != http.StatusServiceUnavailable {
				t.Fatalf("after fault cleared: %d %s (want sticky 503)", code, body)
			}
			if code, _ := get("/health"); code != http.StatusServiceUnavailable {
				t.Fatalf("health after fault cleared: %d", code)
			}
			if code, _ := get("/events/3"); code != 200 {
				t.Fatalf("event 3 after fault cleared: %d", code)
			}
			srv.Close()
			closeErr := st.Log.Close()
			t.Logf("close after fault: %v", closeErr)

			// Restart on the healthy file system.
			st2, err := storetest.OpenErr(dir, storetest.Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer st2.Log.Close()
			last := st2.Log.LastID()
			if last < 10 {
				t.Fatalf("after restart last id %d: acknowledged events lost", last)
			}
			for id := uint64(1); id <= 10; id++ {
				if _, err := st2.Log.Get(id); err != nil {
					t.Fatalf("after restart event %d: %v", id, err)
				}
			}
			switch last {
			case 10:
			case 15:
				// The batch answered 503 reached the WAL before the failed
				// sync: the restart recovered it, whole (fsync failures
				// leave the outcome unknown; the 503 says "not
				// acknowledged", never "nothing was appended").
				for id := uint64(11); id <= 15; id++ {
					if _, err := st2.Log.Get(id); err != nil {
						t.Fatalf("after restart, recovered batch lacks %d: %v", id, err)
					}
				}
				t.Logf("NOTE: after restart the batch refused with 503 (ids 11-15) was recovered whole from the WAL")
			default:
				t.Fatalf("after restart last id %d: the refused batch came back partially", last)
			}
			res, err := st2.Ingest.Append(context.Background(), nil)
			_ = res
			if err == nil {
				t.Fatal("empty append accepted")
			}
			r2 := st2.Append(t, storetest.Plate("cam", time.Now().UnixMilli(), "NEW1"))
			if r2.FirstID != last+1 {
				t.Fatalf("after restart new id %d, want %d", r2.FirstID, last+1)
			}
		})
	}
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestStoreFullDisk runs the store on an 8 MiB tmpfs and ingests until the
// disk is full: the refusal is a 503 with a detail, /health turns 503,
// acknowledged events stay readable, and a copy of the directory on a
// healthy disk opens with every acknowledged event. Needs root (mount).
func TestStoreFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("full-disk test needs a tmpfs mount (root): mount failed: %v %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	}()
	dir := filepath.Join(mnt, "db")
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		st, err := storetest.OpenErr(dir, storetest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Log.Close() // before the umount; Close twice is fine
		api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, Gatherer: st.Reg, Registerer: st.Reg})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api.Handler())
		defer srv.Close()
		acked := uint64(0)
		code, body := 0, ""
		for i := 0; i < 1000; i++ {
			r, err := http.Post(srv.URL+"/ingest", "application/json", strings.NewReader(faultBatch(i*200, 200)))
			if err != nil {
				t.Fatal(err)
			}
			code, body = r.StatusCode, readAll(t, r)
			r.Body.Close()
			if code != 200 {
				break
			}
			var res struct {
				LastID uint64 `json:"last_id"`
			}
			_ = json.Unmarshal([]byte(body), &res)
			acked = res.LastID
		}
		t.Logf("disk full after %d acknowledged events: %d %s", acked, code, body)
		var d struct{ Detail string }
		if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &d) != nil || d.Detail == "" {
			t.Fatalf("full disk: %d %s", code, body)
		}
		r, err := http.Get(srv.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		hb := readAll(t, r)
		r.Body.Close()
		t.Logf("health on full disk: %d %s", r.StatusCode, hb)
		if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(hb, `"ok":false`) {
			t.Fatalf("health on full disk: %d %s", r.StatusCode, hb)
		}
		r, err = http.Get(fmt.Sprintf("%s/events/%d", srv.URL, acked))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("last acknowledged event on full disk: %d", r.StatusCode)
		}
		t.Logf("close on full disk: %v", st.Log.Close())

		// A restart while the disk is still full is refused at once with a
		// clear error (Pebble's WAL replay would retry its flush forever).
		openDone := make(chan error, 1)
		go func() {
			st2, err := storetest.OpenErr(dir, storetest.Options{})
			if err == nil {
				st2.Log.Close()
			}
			openDone <- err
		}()
		select {
		case err := <-openDone:
			if !errors.Is(err, eventlog.ErrDiskFull) {
				t.Fatalf("restart on a full disk: %v, want ErrDiskFull", err)
			}
			t.Logf("restart on a full disk: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("restart on a full disk hangs")
		}
		// The fault clears (space freed): here, the directory is copied to
		// a healthy disk and opened there.
		cp := filepath.Join(t.TempDir(), "copy")
		if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
			t.Fatalf("copy: %v %s", err, out)
		}
		st3, err := storetest.OpenErr(cp, storetest.Options{})
		if err != nil {
			t.Fatalf("open copy: %v", err)
		}
		defer st3.Log.Close()
		if st3.Log.LastID() < acked {
			t.Fatalf("copy has last id %d, %d were acknowledged", st3.Log.LastID(), acked)
		}
		for id := uint64(1); id <= acked; id += 97 {
			if _, err := st3.Log.Get(id); err != nil {
				t.Fatalf("copy lacks acknowledged event %d: %v", id, err)
			}
		}
		st3.Append(t, storetest.Plate("cam", time.Now().UnixMilli(), "AFTER"))
	}()
	if panicked != nil {
		t.Fatalf("store panicked on a full disk: %v", panicked)
	}
}
