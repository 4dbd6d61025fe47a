package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/internal/wstest"
)

// The round-trip property: any valid event, with every string field at
// any allowed length in any script, is stored and read back identically
// on every read path. The stored JSON of one event is the same bytes on
// GET /events/{id}, in /events pages (log scan), in ?source= pages (the
// covering source index), in WebSocket replay, in export --server and in
// export --store, and it decodes to exactly the fields that were sent.

// runes printable characters of 1 to 4 UTF-8 bytes, JSON's escapes among
// them.
var roundTripRunes = []rune{'a', 'Z', '0', ' ', '"', '\\', '/', '<', '&', '\'', 'é', 'ü', '€', '东', '東', '𝄞', '😀'}

// genString returns n random printable characters; long ones use the
// widest encodings, so the byte length is up to 4n.
func genString(r *rand.Rand, n int) string {
	var b strings.Builder
	wide := r.IntN(3) == 0
	for range n {
		if wide {
			b.WriteRune(roundTripRunes[len(roundTripRunes)-1-r.IntN(2)])
		} else {
			b.WriteRune(roundTripRunes[r.IntN(len(roundTripRunes))])
		}
	}
	return b.String()
}

// genLen is a length in [1, max] that is max (or next to it) a third of
// the time.
func genLen(r *rand.Rand, max int) int {
	switch r.IntN(6) {
	case 0, 1:
		return max - r.IntN(2)
	default:
		return 1 + r.IntN(max)
	}
}

func genFloat(r *rand.Rand) float64 {
	switch r.IntN(4) {
	case 0:
		return float64(r.IntN(2))
	case 1:
		return 1e-7 * r.Float64()
	default:
		return r.Float64()
	}
}

// genEvent returns a random valid event as the body object a client sends.
func genEvent(r *rand.Rand, now int64) map[string]any {
	ev := map[string]any{
		"ts_ms":           now - r.Int64N(3600_000),
		"frame_source_id": genString(r, genLen(r, vocab.MaxSourceLen)),
	}
	x1, y1 := float64(r.IntN(1000)), r.Float64()*1000
	bbox := []float64{x1, y1, x1 + float64(r.IntN(500)), y1 + r.Float64()*500}
	var pl map[string]any
	if r.IntN(2) == 0 {
		ev["type"] = vocab.FaceMatch
		pl = map[string]any{"person_name": genString(r, genLen(r, vocab.MaxPersonNameLen)), "similarity": genFloat(r), "bbox": bbox}
		if r.IntN(2) == 0 {
			pl["embedding_distance"] = r.Float64() * 2
		}
	} else {
		ev["type"] = vocab.PlateRead
		pl = map[string]any{"plate_text": genString(r, genLen(r, vocab.MaxPlateTextLen)), "confidence": genFloat(r)}
		if r.IntN(2) == 0 {
			pl["region"] = genString(r, genLen(r, vocab.MaxRegionLen))
		}
		pl["list_match"] = []any{nil, vocab.Whitelist, vocab.Blacklist}[r.IntN(3)]
		if r.IntN(2) == 0 {
			pl["bbox"] = bbox
		}
	}
	if r.IntN(3) == 0 { // extra fields, kept for forward compatibility
		pl["x_"+genString(r, 1+r.IntN(8))] = map[string]any{"s": genString(r, 1+r.IntN(40)), "n": []any{1.5, -2, true, nil}}
	}
	ev["payload"] = pl
	return ev
}

// roundTripServer is a real server on a Pebble store in a temporary
// directory, with retention off so that the generated timestamps stay.
type roundTripServer struct {
	*server
	dbURL string
}

func startRoundTripServer(t testing.TB) *roundTripServer {
	t.Helper()
	dbURL := "pebble://" + filepath.Join(t.TempDir(), "events")
	s := startServer(t, "SECUREVISION__EVENTS__DB_URL="+dbURL, "SECUREVISION__EVENTS__RETENTION_DAYS=0")
	return &roundTripServer{server: s, dbURL: dbURL}
}

// post appends evs and returns the first id.
func (s *roundTripServer) post(t *testing.T, evs []map[string]any) uint64 {
	t.Helper()
	body, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.Post(s.base+"/ingest", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var res struct {
		Count   int    `json:"count"`
		FirstID uint64 `json:"first_id"`
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || json.Unmarshal(b, &res) != nil || res.Count != len(evs) {
		t.Fatalf("ingest of %d events: %d %s", len(evs), r.StatusCode, b)
	}
	return res.FirstID
}

func (s *roundTripServer) get(t *testing.T, path string) []byte {
	t.Helper()
	r, err := http.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, b)
	}
	return b
}

// checkRoundTrip appends evs and checks every read path but export
// --store (which needs the server stopped).
func (s *roundTripServer) checkRoundTrip(t *testing.T, evs []map[string]any) (first uint64, stored [][]byte) {
	t.Helper()
	first = s.post(t, evs)
	stored = make([][]byte, len(evs))
	for i, ev := range evs {
		id := first + uint64(i)
		b := s.get(t, fmt.Sprintf("/events/%d", id))
		if !json.Valid(b) {
			t.Fatalf("GET /events/%d is not JSON: %q", id, b)
		}
		checkFields(t, id, b, ev)
		stored[i] = b
	}
	same := func(path string, id uint64, got []byte) {
		t.Helper()
		if want := stored[id-first]; !bytes.Equal(got, want) {
			t.Fatalf("%s: event %d differs from GET /events/%d:\n got %q\nwant %q", path, id, id, got, want)
		}
	}
	// Pages of the log, and of the covering source index.
	page := func(path string) []json.RawMessage {
		t.Helper()
		var items []json.RawMessage
		if err := json.Unmarshal(s.get(t, path), &items); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return items
	}
	for _, it := range page(fmt.Sprintf("/events?after=%d&limit=1000&order=asc", first-1)) {
		if id := idOf(t, it); id < first+uint64(len(evs)) {
			same("/events page", id, it)
		}
	}
	for i, ev := range evs {
		src := ev["frame_source_id"].(string)
		found := false
		for _, it := range page(fmt.Sprintf("/events?source=%s&after=%d&limit=1000&order=asc", url.QueryEscape(src), first-1)) {
			if id := idOf(t, it); id == first+uint64(i) {
				same("/events?source= page", id, it)
				found = true
			}
		}
		if !found {
			t.Fatalf("event %d missing from its source's page", first+uint64(i))
		}
	}
	// WebSocket replay from the cursor.
	conn, _, err := wstest.Dial(s.base+fmt.Sprintf("/stream?after=%d", first-1), wstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range evs {
		m, err := conn.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("WebSocket replay stalled: %v", err)
		}
		same("WebSocket replay", idOf(t, m), m)
	}
	// export --server follows the next links.
	var out bytes.Buffer
	n, err := exportServer(context.Background(), s.base, "", first-1, &out)
	if err != nil || n < len(evs) {
		t.Fatalf("export --server: %d events, %v", n, err)
	}
	for _, line := range bytes.SplitN(out.Bytes(), []byte("\n"), len(evs)+1)[:len(evs)] {
		same("export --server", idOf(t, line), line)
	}
	return first, stored
}

func idOf(t *testing.T, js []byte) uint64 {
	t.Helper()
	var ev struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal(js, &ev); err != nil || ev.ID == 0 {
		t.Fatalf("not an event (%v): %q", err, js)
	}
	return ev.ID
}

// checkFields: the stored event carries exactly the fields sent, strings
// byte for byte, plus id and created_at.
func checkFields(t *testing.T, id uint64, stored []byte, sent map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(stored, &got); err != nil {
		t.Fatalf("event %d: %v", id, err)
	}
	if got["id"] != float64(id) || got["created_at"] == nil {
		t.Fatalf("event %d: id %v created_at %v", id, got["id"], got["created_at"])
	}
	delete(got, "id")
	delete(got, "created_at")
	// Normalise what was sent through encoding/json, as the stored side is.
	b, _ := json.Marshal(sent)
	var want map[string]any
	json.Unmarshal(b, &want)
	if pl, ok := want["payload"].(map[string]any); ok && want["type"] == vocab.PlateRead {
		if _, ok := pl["region"]; !ok {
			pl["region"] = "" // plates always carry a region
		}
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("event %d stored as\n %s\nsent\n %s", id, gb, wb)
	}
}

func TestRandomEventsRoundTripOnEveryReadPath(t *testing.T) {
	s := startRoundTripServer(t)
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	now := time.Now().UnixMilli()
	var all [][]byte
	first := uint64(0)
	for range 4 {
		evs := make([]map[string]any, 50)
		for i := range evs {
			evs[i] = genEvent(r, now)
		}
		f, stored := s.checkRoundTrip(t, evs)
		if first == 0 {
			first = f
		}
		all = append(all, stored...)
	}
	s.stop()
	var out bytes.Buffer
	n, err := exportStore(s.dbURL, 0, &out)
	if err != nil || n != len(all) {
		t.Fatalf("export --store: %d events, %v", n, err)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if !bytes.Equal(line, all[i]) {
			t.Fatalf("export --store: line %d differs:\n got %q\nwant %q", i, line, all[i])
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runVerify([]string{"--store", s.dbURL}, &stdout, &stderr); code != 0 {
		t.Fatalf("verify: %d %s%s", code, stdout.String(), stderr.String())
	}
}

// FuzzRoundTrip runs the round-trip property on events generated from the
// fuzzer's seed, against one server for the whole run (make fuzz).
func FuzzRoundTrip(f *testing.F) {
	for _, seed := range []uint64{1, 2, 42, 1 << 40} {
		f.Add(seed, uint8(5))
	}
	s := startRoundTripServer(f)
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>32))
		evs := make([]map[string]any, 1+int(n)%20)
		for i := range evs {
			evs[i] = genEvent(r, time.Now().UnixMilli())
		}
		s.checkRoundTrip(t, evs)
	})
}
