package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
				code, res, raw, err := Ingest(context.Background(), http.DefaultClient, srv.Base, "", body.Bytes(), false)
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
	r, err := http.Post(srv.Base+"/backup", "", nil)
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
	r, err = http.Get(fmt.Sprintf("%s/events/%d", rs.Base, last.ID))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("restored server: event %d: %v %v", last.ID, r, err)
	}
	r.Body.Close()
	code, res, raw, err := Ingest(context.Background(), http.DefaultClient, rs.Base, "", EventJSON(0, "cam", "after-restore", time.Now().UnixMilli()), false)
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
	if code, _, raw, err := Ingest(context.Background(), http.DefaultClient, srv.Base, "", body.Bytes(), true); err != nil || code != 200 {
		t.Fatalf("ingest: %d %s %v", code, raw, err)
	}
	// --server export from the running server.
	srvExport := filepath.Join(root, "server.ndjson")
	if _, e, err := Tool(bin, "export", "--server", srv.Base, "-o", srvExport); err != nil {
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
	if out, e, err := Tool(bin, "import", "--server", s2.Base, "--token", "tok", "-i", file); err != nil {
		t.Fatalf("import --server: %v %s %s", err, out, e)
	}
	if _, e, err := Tool(bin, "export", "--server", s2.Base, "--token", "wrong", "-o", filepath.Join(root, "x")); err == nil {
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
