package eventlog_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
)

// testdata/v1-store was written by the binary of format version 1 (the
// commit before the header's source length grew to two bytes): 20 events,
// ids 1..20, alternately faces named "Person <i> ü" and plates "ABC<1000+i>",
// on camera_<i%3>.
func TestFormatV1StoreOpensAndIsMarkedV2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	copyDir(t, "testdata/v1-store", dir)
	if v := storedVersion(t, dir); v != 1 {
		t.Fatalf("fixture has format version %d, want 1", v)
	}
	s, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatalf("open version 1 store: %v", err)
	}
	for id := uint64(1); id <= 20; id++ {
		v, err := s.Log.Get(id)
		if err != nil {
			t.Fatalf("get %d: %v", id, err)
		}
		_, _, src, js, err := eventlog.SplitValue(v)
		if err != nil {
			t.Fatalf("record %d: %v", id, err)
		}
		var ev struct {
			ID      uint64 `json:"id"`
			Source  string `json:"frame_source_id"`
			Payload map[string]any
		}
		if err := json.Unmarshal(js, &ev); err != nil || ev.ID != id {
			t.Fatalf("record %d: id %d, %v: %s", id, ev.ID, err, js)
		}
		i := id - 1
		if want := "camera_" + string(rune('0'+i%3)); ev.Source != want || string(src) != want {
			t.Fatalf("record %d: source %q / header %q, want %q", id, ev.Source, src, want)
		}
	}
	// New records carry the version 2 header beside the old ones.
	long := strings.Repeat("東", vocab.MaxSourceLen)
	res := s.Append(t, storetest.Face(long, time.Now().UnixMilli(), "x"))
	if res.FirstID != 21 {
		t.Fatalf("first new id %d, want 21", res.FirstID)
	}
	verifyClean(t, s.Log)
	if err := s.Log.Close(); err != nil {
		t.Fatal(err)
	}
	if v := storedVersion(t, dir); v != eventlog.FormatVersion {
		t.Fatalf("store opened for writing has format version %d, want %d", v, eventlog.FormatVersion)
	}
	s2 := storetest.Open(t, storetest.Options{Dir: dir})
	v, err := s2.Log.Get(21)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, src, _, err := eventlog.SplitValue(v); err != nil || string(src) != long {
		t.Fatalf("record 21 after reopen: source of %d bytes (%v), want %d", len(src), err, len(long))
	}
	verifyClean(t, s2.Log)
}

// A source whose byte length does not fit one byte (the version 1 header)
// round-trips in the header and in the JSON.
func TestLongMultiByteSourcesRoundTrip(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	now := time.Now().UnixMilli()
	var evs []ingest.Event
	for _, src := range []string{
		strings.Repeat("东", 100),                           // 300 bytes: the reported case
		strings.Repeat("é", 127) + "東",                     // 257 bytes
		strings.Repeat("𝄞", vocab.MaxSourceLen),            // 512 bytes, the longest valid source
		strings.Repeat("é", 128),                           // 256 bytes: wrapped to 0
		strings.Repeat("\"", 1) + strings.Repeat("é", 127), // JSON escaping in the JSON part only
	} {
		evs = append(evs, storetest.Plate(src, now, "ABC1234"))
	}
	res := s.Append(t, evs...)
	for i, ev := range evs {
		id := res.FirstID + uint64(i)
		v, err := s.Log.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		_, _, src, js, err := eventlog.SplitValue(v)
		if err != nil {
			t.Fatalf("record %d: %v", id, err)
		}
		var got struct {
			Source string `json:"frame_source_id"`
		}
		if err := json.Unmarshal(js, &got); err != nil {
			t.Fatalf("record %d is not JSON: %v", id, err)
		}
		if string(src) != ev.Source || got.Source != ev.Source {
			t.Fatalf("record %d: header source %d bytes, JSON source %d bytes, want %d", id, len(src), len(got.Source), len(ev.Source))
		}
	}
	verifyClean(t, s.Log)
}

func TestAppendRefusesSourceLongerThanHeader(t *testing.T) {
	s := storetest.Open(t, storetest.Options{})
	rec := eventlog.Record{Type: vocab.FaceMatchCode, TsMs: 1, Source: strings.Repeat("a", eventlog.MaxSourceBytes+1),
		Head: []byte(`"type":"face_match"`), Tail: []byte(`"payload":{}`)}
	if _, _, err := s.Log.Append(context.Background(), []eventlog.Record{rec}); !errors.Is(err, eventlog.ErrSourceTooLong) {
		t.Fatalf("append of a %d-byte source: %v, want ErrSourceTooLong", len(rec.Source), err)
	}
	if s.Log.LastID() != 0 || s.Log.Err() != nil {
		t.Fatalf("refused append changed the log: last id %d, err %v", s.Log.LastID(), s.Log.Err())
	}
}

func TestSplitValueRefusesTruncatedHeaders(t *testing.T) {
	v := []byte{2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 'a', 'b'}
	for n := 0; n < len(v); n++ {
		if _, _, _, _, err := eventlog.SplitValue(v[:n]); err == nil {
			t.Fatalf("%d bytes of a header promising 5 source bytes decoded", n)
		}
	}
	if _, _, _, _, err := eventlog.SplitValue([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}); err == nil {
		t.Fatal("header version 3 decoded")
	}
}

func storedVersion(t *testing.T, dir string) uint64 {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, c, err := db.Get([]byte("Mversion"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return binary.BigEndian.Uint64(v)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
