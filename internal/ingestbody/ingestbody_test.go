package ingestbody_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/vocab"
)

func TestAppendExactBytes(t *testing.T) {
	d := 0.35
	for _, tc := range []struct {
		ev   ingest.Event
		want string
	}{
		{ingest.Event{Type: vocab.FaceMatch, TsMs: 1704067200000, Source: "cam",
			Face: &ingest.Face{PersonName: "Jane", Similarity: 0.92, BBox: ingest.BBox{100, 150, 250, 300}, EmbeddingDistance: &d}},
			`{"type":"face_match","ts_ms":1704067200000,"frame_source_id":"cam","payload":{"person_name":"Jane","similarity":0.92,"bbox":[100,150,250,300],"embedding_distance":0.35}}`},
		{ingest.Event{Type: vocab.PlateRead, TsMs: 5, Source: "cam",
			Plate: &ingest.Plate{PlateText: "ABC1234", Confidence: 0.5, Region: "US-CA", ListMatchSet: true},
			Extra: map[string]json.RawMessage{"seq": json.RawMessage("3"), "a": json.RawMessage(`{"x":[1,null]}`)}},
			`{"type":"plate_read","ts_ms":5,"frame_source_id":"cam","payload":{"plate_text":"ABC1234","confidence":0.5,"region":"US-CA","list_match":null,"a":{"x":[1,null]},"seq":3}}`},
		// No ts_ms (the server stamps it), no region, list_match unset.
		{ingest.Event{Type: vocab.PlateRead, Source: "c", Plate: &ingest.Plate{PlateText: "X1", Confidence: 1, BBox: &ingest.BBox{1, 2, 3, 4}}},
			`{"type":"plate_read","frame_source_id":"c","payload":{"plate_text":"X1","confidence":1,"bbox":[1,2,3,4]}}`},
		{ingest.Event{Type: vocab.PlateRead, TsMs: 1, Source: "c", Plate: &ingest.Plate{PlateText: "X1", Confidence: 0.88, Region: "US-CA", ListMatch: vocab.Whitelist, ListMatchSet: true}},
			`{"type":"plate_read","ts_ms":1,"frame_source_id":"c","payload":{"plate_text":"X1","confidence":0.88,"region":"US-CA","list_match":"whitelist"}}`},
		// Extra fields alone, and a snapshot (base64).
		{ingest.Event{Type: "other", Source: "c", Extra: map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}, Snapshot: []byte{0xFF, 0xD8, 0xFF}},
			`{"type":"other","frame_source_id":"c","payload":{"k":"v"},"snapshot_jpeg":"/9j/"}`},
	} {
		if got := string(ingestbody.Append([]byte("x"), &tc.ev)); got != "x"+tc.want {
			t.Errorf("got  %s\nwant x%s", got, tc.want)
		}
	}
}

// TestAppendRoundTrip: whatever the strings hold, the body is JSON and
// the server's decoder reads back the event that was encoded.
func TestAppendRoundTrip(t *testing.T) {
	// Names may hold any character; sources and regions printable ones.
	names := []string{"\x00\a\b\f\n\r\t\v\x1b\x7f", "\u2028\u2029\u200b\ufeff", `"q" \b/`, "é 東 😀", "<a&b>"}
	printable := []string{`"q" \b/`, "é 東 😀", "<a&b>"}
	// Go's %q quoting of the first is not JSON (\a, \v, \x1b, \x7f).
	if json.Valid([]byte(strconv.Quote(names[0]))) {
		t.Fatal("Go quoting of control characters is JSON: the test proves less")
	}
	d := 0.125
	var evs []ingest.Event
	for i, s := range names {
		p := printable[i%len(printable)]
		evs = append(evs,
			ingest.Event{Type: vocab.FaceMatch, TsMs: int64(i + 1), Source: p,
				Face: &ingest.Face{PersonName: s, Similarity: 1e-7, BBox: ingest.BBox{0.5, 2, 1e21, 4}, EmbeddingDistance: &d}},
			ingest.Event{Type: vocab.PlateRead, TsMs: int64(i + 1), Source: p,
				Plate: &ingest.Plate{PlateText: s, Confidence: 0.5, Region: p, ListMatch: vocab.Blacklist, ListMatchSet: true, BBox: &ingest.BBox{1, 2, 3, 4}},
				Extra: map[string]json.RawMessage{"x_" + p: json.RawMessage(`[true,false]`)}})
	}
	body := []byte{'['}
	for i := range evs {
		if i > 0 {
			body = append(body, ',')
		}
		body = ingestbody.Append(body, &evs[i])
	}
	body = append(body, ']')
	if !json.Valid(body) {
		t.Fatalf("not JSON: %s", body)
	}
	got, err := ingest.Decode(bytes.NewReader(body), false)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", got, evs)
	}
}

func TestAppendPanicsOnNaN(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	nan := 0.0
	nan /= nan
	ingestbody.Append(nil, &ingest.Event{Type: vocab.FaceMatch, Source: "c", Face: &ingest.Face{Similarity: nan}})
}
