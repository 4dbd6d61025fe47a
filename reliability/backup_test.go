package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
)

// TestBackupWhileIngesting takes POST /backup while 4 writers keep
// ingesting, then restores by serving the backup directory: every event
// acknowledged before the backup started is there with its id and content,
// and `securevision verify` passes on the copy.
func TestBackupWhileIngesting(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	dir := filepath.Join(root, "events")
	srv, err := StartServer(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	type ack struct {
		first uint64
		evs   [][]byte
		at    time.Time // when the answer arrived
	}
	var (
		mu    sync.Mutex
		acks  []ack
		stop  atomic.Bool
		wg    sync.WaitGroup
		count atomic.Int64
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				evs := make([][]byte, 20)
				var body bytes.Buffer
				body.WriteByte('[')
				for i := range evs {
					evs[i] = EventJSON(i, fmt.Sprintf("cam-%d", w), fmt.Sprintf("b%d-%d", w, n), time.Now().UnixMilli())
					if i > 0 {
						body.WriteByte(',')
					}
					body.Write(evs[i])
				}
				body.WriteByte(']')
				code, res, raw, err := Ingest(context.Background(), http.DefaultClient, srv.URL, "", body.Bytes(), false)
				if err != nil || code != 200 {
					t.Errorf("ingest: %d %s %v", code, raw, err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{res.FirstID, evs, time.Now()})
				mu.Unlock()
				count.Add(20)
			}
		}(w)
	}
	for count.Load() < 5000 {
		time.Sleep(10 * time.Millisecond)
	}
	backupStart := time.Now()
	r, err := http.Post(srv.URL+"/backup", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var bres struct {
		Path   string `json:"path"`
		LastID uint64 `json:"last_id"`
	}
	err = json.NewDecoder(r.Body).Decode(&bres)
	r.Body.Close()
	if r.StatusCode != 200 || err != nil {
		t.Fatalf("backup: %d %v", r.StatusCode, err)
	}
	backupTook := time.Since(backupStart)
	if filepath.IsAbs(bres.Path) || filepath.Base(bres.Path) != bres.Path {
		t.Fatalf("backup answer names a server path: %q", bres.Path)
	}
	// The answer is relative to the harness's BACKUP_DIR.
	bres.Path = filepath.Join(filepath.Dir(dir), "backups", bres.Path)
	time.Sleep(200 * time.Millisecond) // ingest goes on after the backup
	stop.Store(true)
	wg.Wait()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	if err := Verify(bin, bres.Path); err != nil {
		t.Fatalf("backup copy: %v", err)
	}
	stored, err := Export(bin, bres.Path)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint64][]byte{}
	for _, l := range stored {
		var s Stored
		_ = json.Unmarshal(l, &s)
		byID[s.ID] = l
	}
	before := 0
	for _, a := range acks {
		if !a.at.Before(backupStart) {
			continue
		}
		for i, ev := range a.evs {
			before++
			got, ok := byID[a.first+uint64(i)]
			if !ok {
				t.Fatalf("event %d acknowledged before the backup started is not in the backup", a.first+uint64(i))
			}
			if same, _ := SameContent(ev, got); !same {
				t.Fatalf("event %d differs in the backup: %s vs %s", a.first+uint64(i), got, ev)
			}
		}
	}
	if uint64(len(stored)) < bres.LastID {
		t.Fatalf("backup reports last_id %d but holds %d events", bres.LastID, len(stored))
	}
	// Restore: serve the backup directory.
	rs, err := StartServer(bin, bres.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Stop()
	var last Stored
	_ = json.Unmarshal(stored[len(stored)-1], &last)
	r, err = http.Get(fmt.Sprintf("%s/events/%d", rs.URL, last.ID))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("restored server: event %d: %v %v", last.ID, r, err)
	}
	r.Body.Close()
	code, res, raw, err := Ingest(context.Background(), http.DefaultClient, rs.URL, "", EventJSON(0, "cam", "after-restore", time.Now().UnixMilli()), false)
	if err != nil || code != 200 || res.FirstID != last.ID+1 {
		t.Fatalf("append on the restored store: %d %s %v (want id %d)", code, raw, err, last.ID+1)
	}
	t.Logf("backup in %s while ingesting: %d events acknowledged before it started, all present; backup holds %d (last_id %d); %d acknowledged in total",
		backupTook.Round(time.Millisecond), before, len(stored), bres.LastID, count.Load())
}

// TestExportImportRoundTrip: store → NDJSON → new store (offline), and
// the same through --server against running servers; the events are the
// same modulo id and created_at, in the same order.
func TestExportImportRoundTrip(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	srv, err := StartServer(bin, src)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	for i := 0; i < 2500; i++ {
		body.Write(EventJSON(i, fmt.Sprintf("cam-%d", i%7), fmt.Sprintf("T%d", i), 1704067200000+int64(i)))
		body.WriteByte('\n')
	}
	if code, _, raw, err := Ingest(context.Background(), http.DefaultClient, srv.URL, "", body.Bytes(), true); err != nil || code != 200 {
		t.Fatalf("ingest: %d %s %v", code, raw, err)
	}
	// --server export from the running server.
	srvExport := filepath.Join(root, "server.ndjson")
	if _, e, err := Tool(bin, "export", "--server", srv.URL, "-o", srvExport); err != nil {
		t.Fatalf("export --server: %v %s", err, e)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	orig, err := Export(bin, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) != 2500 {
		t.Fatalf("exported %d", len(orig))
	}
	fromServer, _ := os.ReadFile(srvExport)
	if !bytes.Equal(bytes.TrimSpace(fromServer), bytes.TrimSpace(bytes.Join(orig, []byte("\n")))) {
		t.Fatal("export --server differs from export --store")
	}
	file := filepath.Join(root, "events.ndjson")
	if err := os.WriteFile(file, append(bytes.Join(orig, []byte("\n")), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	compare := func(what string, got [][]byte) {
		t.Helper()
		if len(got) != len(orig) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(orig))
		}
		for i := range got {
			if same, err := SameContent(orig[i], got[i]); err != nil || !same {
				t.Fatalf("%s: event %d: %s vs %s", what, i, got[i], orig[i])
			}
		}
	}
	// Offline: import --store into a new store.
	dst := filepath.Join(root, "dst")
	if out, e, err := Tool(bin, "import", "--store", "pebble://"+dst, "-i", file, "--batch", "700"); err != nil {
		t.Fatalf("import --store: %v %s %s", err, out, e)
	}
	if err := Verify(bin, dst); err != nil {
		t.Fatal(err)
	}
	imported, err := Export(bin, dst)
	if err != nil {
		t.Fatal(err)
	}
	compare("import --store", imported)

	// Online: import --server into a running server with a token.
	dst2 := filepath.Join(root, "dst2")
	s2, err := StartServer(bin, dst2, "SECUREVISION__API__AUTH_TOKEN=tok")
	if err != nil {
		t.Fatal(err)
	}
	if out, e, err := Tool(bin, "import", "--server", s2.URL, "--token", "tok", "-i", file); err != nil {
		t.Fatalf("import --server: %v %s %s", err, out, e)
	}
	if _, e, err := Tool(bin, "export", "--server", s2.URL, "--token", "wrong", "-o", filepath.Join(root, "x")); err == nil {
		t.Fatalf("export --server with a wrong token succeeded: %s", e)
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}
	imported2, err := Export(bin, dst2)
	if err != nil {
		t.Fatal(err)
	}
	compare("import --server", imported2)
}

// backupAnswer is POST /backup's answer: a 200 body or a detail.
type backupAnswer struct {
	code   int
	Path   string `json:"path"`
	LastID uint64 `json:"last_id"`
	Detail string `json:"detail"`
	raw    []byte
}

func postBackup(c *http.Client, base string) (backupAnswer, error) {
	r, err := c.Post(base+"/backup", "", nil)
	if err != nil {
		return backupAnswer{}, err
	}
	defer r.Body.Close()
	a := backupAnswer{code: r.StatusCode}
	if a.raw, err = io.ReadAll(r.Body); err != nil {
		return a, err
	}
	if err := json.Unmarshal(a.raw, &a); err != nil {
		return a, fmt.Errorf("%d %q: %w", a.code, a.raw, err)
	}
	return a, nil
}

// checkBackupStore opens dir through eventlog (read-only) and reads every
// record up to lastID: the backup is a whole store, not only a folder.
func checkBackupStore(dir string, lastID uint64) error {
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) == 0 {
		return fmt.Errorf("%s has no MANIFEST", dir)
	}
	l, err := eventlog.Open(eventlog.Options{URL: "pebble://" + dir, ReadOnly: true, CacheBytes: 8 << 20})
	if err != nil {
		return err
	}
	defer l.Close()
	if l.LastID() < lastID {
		return fmt.Errorf("%s: last id %d, the answer said %d", dir, l.LastID(), lastID)
	}
	it, err := l.NewLogIter(1, lastID)
	if err != nil {
		return err
	}
	defer it.Close()
	var n uint64
	for ok := it.First(); ok; ok = it.Next() {
		if _, _, _, _, err := eventlog.SplitValue(it.Value()); err != nil {
			return fmt.Errorf("%s: record %d: %w", dir, eventlog.KeyID(it.Key()), err)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if n != lastID {
		return fmt.Errorf("%s: %d records up to id %d", dir, n, lastID)
	}
	return nil
}

// TestBackupConcurrentPosts: 8 clients loop POST /backup for 2 s against
// the real server. Every 200 names a distinct backup that exists
// afterwards, has a MANIFEST and opens as a store holding its last_id;
// every other answer is 409; nothing is 5xx. Backups used to be named by
// the millisecond, and a failed Pebble checkpoint removes its destination:
// two requests in one millisecond deleted or broke each other's backup.
func TestBackupConcurrentPosts(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	dir := filepath.Join(root, "events")
	backups := filepath.Join(root, "backups") // the harness's BACKUP_DIR
	// Keep every backup so that each answer can be checked afterwards.
	srv, err := StartServer(bin, dir, "SECUREVISION__EVENTS__BACKUP_KEEP=100000")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var body bytes.Buffer
	body.WriteByte('[')
	for i := 0; i < 500; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(EventJSON(i, "cam", fmt.Sprintf("c%d", i), time.Now().UnixMilli()))
	}
	body.WriteByte(']')
	if code, _, raw, err := Ingest(context.Background(), http.DefaultClient, srv.URL, "", body.Bytes(), false); err != nil || code != 200 {
		t.Fatalf("ingest: %d %s %v", code, raw, err)
	}
	var (
		mu      sync.Mutex
		oks     []backupAnswer
		busy    int
		wg      sync.WaitGroup
		end     = time.Now().Add(2 * time.Second)
		clients = 8
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 30 * time.Second}
			for time.Now().Before(end) {
				a, err := postBackup(hc, srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				switch a.code {
				case http.StatusOK:
					oks = append(oks, a)
				case http.StatusConflict:
					busy++
					if a.Detail == "" {
						t.Errorf("409 without a detail: %s", a.raw)
					}
				default:
					t.Errorf("POST /backup: %d %s", a.code, a.raw)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if len(oks) == 0 {
		t.Fatalf("no backup succeeded (%d answered 409)", busy)
	}
	seen := map[string]bool{}
	for _, a := range oks {
		if filepath.IsAbs(a.Path) || filepath.Base(a.Path) != a.Path {
			t.Errorf("answer names a server path: %s", a.raw)
			continue
		}
		p := filepath.Join(backups, a.Path)
		if seen[p] {
			t.Errorf("two answers named %s", a.Path)
			continue
		}
		seen[p] = true
		if err := checkBackupStore(p, a.LastID); err != nil {
			t.Errorf("answer %s: %v", a.raw, err)
		}
	}
	// Nothing but the answered backups is left: a failed or refused
	// request leaves no folder behind.
	ents, err := os.ReadDir(backups)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(seen) {
		t.Errorf("backup folder holds %d entries, %d backups were answered", len(ents), len(seen))
	}
	t.Logf("%d backups answered 200, %d requests answered 409", len(oks), busy)
}

// TestBackupKeepsNewest: with BACKUP_KEEP=3, after each POST /backup the
// backup folder holds exactly the newest 3 answered backups, and the
// entries that are not backups (other names, a file with a backup's
// name) are left alone.
func TestBackupKeepsNewest(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	backups := filepath.Join(root, "backups")
	others := []string{"README", "events-manual", "events-20000101T000000.000Z-1"}
	if err := os.MkdirAll(filepath.Join(backups, "events-manual"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"README", "events-20000101T000000.000Z-1"} {
		if err := os.WriteFile(filepath.Join(backups, f), []byte("not a backup"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := StartServer(bin, filepath.Join(root, "events"), "SECUREVISION__EVENTS__BACKUP_KEEP=3")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var answered []string
	for i := 0; i < 6; i++ {
		if code, _, raw, err := Ingest(context.Background(), http.DefaultClient, srv.URL, "", EventJSON(i, "cam", fmt.Sprint(i), time.Now().UnixMilli()), false); err != nil || code != 200 {
			t.Fatalf("ingest: %d %s %v", code, raw, err)
		}
		a, err := postBackup(http.DefaultClient, srv.URL)
		if err != nil || a.code != 200 {
			t.Fatalf("backup %d: %+v %v", i, a, err)
		}
		answered = append(answered, a.Path)
		newest := answered[max(0, len(answered)-3):]
		want := map[string]bool{}
		for _, n := range append(slices.Clone(others), newest...) {
			want[n] = true
		}
		ents, err := os.ReadDir(backups)
		if err != nil {
			t.Fatal(err)
		}
		var on []string
		for _, e := range ents {
			on = append(on, e.Name())
			if !want[e.Name()] {
				t.Errorf("after backup %d: %s is left (newest: %v)", i+1, e.Name(), newest)
			}
		}
		if len(on) != len(want) {
			t.Fatalf("after backup %d the folder holds %v, want the newest %v and %v", i+1, on, newest, others)
		}
		if err := checkBackupStore(filepath.Join(backups, a.Path), a.LastID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupFailureNamesNoPath: a backup that fails (BACKUP_DIR lies
// under a regular file) answers 503 with a detail that names no server
// path; the server's log has the whole error.
func TestBackupFailureNamesNoPath(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(bin, filepath.Join(root, "events"), "SECUREVISION__EVENTS__BACKUP_DIR="+filepath.Join(file, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	a, err := postBackup(http.DefaultClient, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if a.code != 503 || a.Detail == "" {
		t.Fatalf("failing backup: %d %s", a.code, a.raw)
	}
	if strings.Contains(string(a.raw), root) || strings.Contains(string(a.raw), "/") {
		t.Fatalf("failing backup's answer names a path: %s", a.raw)
	}
	// The log reaches Stderr through a pipe: read it once the server is gone.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(srv.Logs(), `"msg":"backup failed"`) || !strings.Contains(srv.Logs(), file) {
		t.Fatalf("the server log lacks the error: %s", srv.Logs())
	}
}
