package ingest

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkScan1000 is the scanner's share of BenchmarkDecode1000: the
// strictness and limit checks that run before any item is parsed.
func BenchmarkScan1000(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := 0; i < 1000; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"type":"face_match","ts_ms":%d,"frame_source_id":"camera_%d","payload":{"person_name":"John Doe","similarity":0.92,"bbox":[100,150,250,300],"embedding_distance":0.35}}`, 1704067200000+i, i%20)
	}
	body.WriteByte(']')
	b.SetBytes(int64(body.Len()))
	var spans []span
	for i := 0; i < b.N; i++ {
		var err error
		if spans, _, err = scanBody(body.Bytes(), spans[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
