package ingest_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/securevision/events/ingest"
)

func batchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"type":"face_match","ts_ms":%d,"frame_source_id":"camera_%d","payload":{"person_name":"John Doe","similarity":0.92,"bbox":[100,150,250,300],"embedding_distance":0.35}}`, 1704067200000+i, i%20)
		} else {
			fmt.Fprintf(&b, `{"type":"plate_read","ts_ms":%d,"frame_source_id":"camera_%d","payload":{"plate_text":"ABC1234","confidence":0.88,"region":"US-CA","list_match":"whitelist"}}`, 1704067200000+i, i%20)
		}
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkDecode1000 decodes and validates a 1000-event JSON array, the
// HTTP ingest benchmark's request body.
func BenchmarkDecode1000(b *testing.B) {
	body := batchBody(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if _, err := ingest.Decode(bytes.NewReader(body), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "events/s")
}
