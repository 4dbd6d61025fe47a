package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Decoders are pooled with their body buffer, parser and intern table:
// events returned by one Decode must not change when later requests
// reuse that state.
func TestDecodedEventsOutliveThePooledDecoder(t *testing.T) {
	items := func(n int, name, src string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(`{"type":"face_match","ts_ms":%d,"frame_source_id":"%s_%d","payload":{"person_name":"%s \u00e9","similarity":0.%d,"bbox":[1,2,3,%d],"note":{"k":["%s"]}}}`,
				1704067200000+i, src, i%7, name, i%10, i+2, name)
		}
		return out
	}
	body := func(n int, name, src string) []byte {
		return []byte("[" + strings.Join(items(n, name, src), ",") + "]")
	}
	first, err := Decode(bytes.NewReader(body(500, "Alice", "cam")), false)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, len(first))
	for i := range first {
		want[i] = encodeForTest(&first[i])
	}
	// Overwrite whatever the pool holds, with JSON arrays and NDJSON of
	// other strings. The later bodies are smaller than the first, so the
	// pooled buffers are written over in place rather than regrown: a
	// string aliasing them would change (checked by breaking intern).
	for r := 0; r < 20; r++ {
		other := body(400, strings.Repeat("Z", r+1), fmt.Sprintf("other%d", r))
		if _, err := Decode(bytes.NewReader(other), false); err != nil {
			t.Fatal(err)
		}
		nd := []byte(strings.Join(items(200, "Y", fmt.Sprintf("nd%d", r)), "\n"))
		if _, err := Decode(bytes.NewReader(nd), true); err != nil {
			t.Fatal(err)
		}
	}
	for i := range first {
		if got := encodeForTest(&first[i]); !bytes.Equal(got, want[i]) {
			t.Fatalf("event %d changed after later decodes:\n was %s\n now %s", i, want[i], got)
		}
	}
}

func TestInternTableIsBounded(t *testing.T) {
	d := &decoder{strs: map[string]string{}}
	long := strings.Repeat("x", maxInternLen+1)
	if s := d.intern([]byte(long)); s != long || len(d.strs) != 0 {
		t.Fatalf("a %d-byte string was interned", len(long))
	}
	for i := 0; i < 3*maxInterned; i++ {
		k := fmt.Sprintf("camera_%d", i)
		if s := d.intern([]byte(k)); s != k {
			t.Fatalf("intern(%q) = %q", k, s)
		}
		if len(d.strs) > maxInterned {
			t.Fatalf("intern table holds %d strings, the bound is %d", len(d.strs), maxInterned)
		}
	}
	// Repeats hit the table.
	a := d.intern([]byte("camera_front"))
	b := d.intern([]byte("camera_front"))
	if a != b || len(d.strs) == 0 {
		t.Fatal("a repeated string was not interned")
	}
}

// A decoder is pooled after ordinary batches, not after bodies whose value
// count (fastjson's cache) or size would stay pinned in the pool.
func TestPoolableBounds(t *testing.T) {
	ev := `{"type":"face_match","ts_ms":1704067200000,"frame_source_id":"camera_front_door","payload":{"person_name":"John Doe","similarity":0.92,"bbox":[100,150,250,300],"embedding_distance":0.35}}`
	batch := []byte("[" + strings.Repeat(ev+",", 999) + ev + "]")
	if !poolable(batch) {
		t.Errorf("a 1000-event batch (%d bytes) is not poolable", len(batch))
	}
	dense := []byte("[" + strings.Repeat("0,", maxPooledValues) + "0]")
	if poolable(dense) {
		t.Errorf("%d values in %d bytes are poolable", maxPooledValues+1, len(dense))
	}
	big := []byte(`"` + strings.Repeat("x", maxPooledBody) + `"`)
	if poolable(big) {
		t.Errorf("a %d-byte body is poolable", len(big))
	}
}
