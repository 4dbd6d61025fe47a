package cluster

import (
	"bytes"
	"testing"

	"github.com/securevision/events/eventlog"
)

func sampleRecord() eventlog.Record {
	return eventlog.Record{Type: 2, TsMs: 1704067200000, Source: "camera_driveway",
		Head: []byte(`"type":"plate_read","ts_ms":1704067200000,"frame_source_id":"camera_driveway"`),
		Tail: []byte(`"payload":{"plate_text":"ABC1234","confidence":0.88,"region":"US-CA","list_match":null}`),
		Blob: []byte{0xff, 0xd8, 0xff, 0xd9}}
}

// Encoded events and markers decode to what was encoded.
func TestMessageRoundTrip(t *testing.T) {
	rec := sampleRecord()
	req := &requestInfo{count: 3, key: "k-1"}
	req.hash[5] = 7
	for _, r := range []*requestInfo{nil, req, {count: 1}} {
		b := appendEvent(nil, 1704067205000, &rec, r)
		if r == nil && len(b) != eventSize(&rec) {
			t.Fatalf("eventSize %d, encoded %d", eventSize(&rec), len(b))
		}
		if r != nil && len(b) > eventSize(&rec)+trailerMax {
			t.Fatalf("trailer longer than trailerMax")
		}
		e, err := decodeEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		if e.createdMs != 1704067205000 || e.rec.Type != rec.Type || e.rec.TsMs != rec.TsMs || e.rec.Source != rec.Source ||
			!bytes.Equal(e.rec.Head, rec.Head) || !bytes.Equal(e.rec.Tail, rec.Tail) || !bytes.Equal(e.rec.Blob, rec.Blob) {
			t.Fatalf("decoded %+v", e)
		}
		if (r == nil) != (e.req == nil) || r != nil && *e.req != *r {
			t.Fatalf("request info %+v, want %+v", e.req, r)
		}
	}
	m, err := decodeMarker(appendMarker(nil, 123456, "node-a"))
	if err != nil || m.cutoffMs != 123456 || m.origin != "node-a" {
		t.Fatalf("marker %+v %v", m, err)
	}
	// Truncated or extended bodies are refused, never read past.
	b := appendEvent(nil, 1, &rec, req)
	for i := 0; i < len(b); i++ {
		if _, err := decodeEvent(b[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	if _, err := decodeEvent(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// FuzzDecodeMessage: no body makes the decoders panic or return slices
// beyond the body, and what they accept encodes back to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	rec := sampleRecord()
	f.Add(appendEvent(nil, 1, &rec, nil))
	f.Add(appendEvent(nil, 1, &rec, &requestInfo{count: 2, key: "x"}))
	f.Add(appendMarker(nil, 99, "n"))
	f.Add([]byte{kindEvent, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeEvent(b); err == nil {
			var again []byte
			if e.req != nil {
				again = appendEvent(nil, e.createdMs, &e.rec, e.req)
			} else {
				again = appendEvent(nil, e.createdMs, &e.rec, nil)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, body %x", again, b)
			}
		}
		if m, err := decodeMarker(b); err == nil {
			if again := appendMarker(nil, m.cutoffMs, m.origin); !bytes.Equal(again, b) {
				t.Fatalf("marker re-encoded %x, body %x", again, b)
			}
		}
	})
}
