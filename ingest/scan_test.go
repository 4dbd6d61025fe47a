package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/securevision/events/internal/vocab"
)

const validFace = `{"type":"face_match","ts_ms":1704067200000,"frame_source_id":"cam","payload":{"person_name":"A","similarity":0.5,"bbox":[1,2,3,4]}}`

// JSON that Python's json module refuses is refused (422 json_invalid),
// as a document and as an NDJSON line, though fastjson would accept it.
func TestDecodeIsAsStrictAsPython(t *testing.T) {
	for name, body := range map[string]string{
		"leading zero":            strings.Replace(validFace, `1704067200000`, `00123`, 1),
		"leading zero in payload": strings.Replace(validFace, `"bbox":[1,`, `"bbox":[01,`, 1),
		"negative leading zero":   strings.Replace(validFace, `"bbox":[1,`, `"bbox":[-01,`, 1),
		"raw tab in string":       strings.Replace(validFace, `"A"`, "\"A\tB\"", 1),
		"raw newline in key":      strings.Replace(validFace, `"similarity"`, "\"simi\nlarity\"", 1),
		"raw NUL in string":       strings.Replace(validFace, `"cam"`, "\"c\x00m\"", 1),
		"invalid UTF-8":           strings.Replace(validFace, `"A"`, "\"A\xff\"", 1),
		"bad escape":              strings.Replace(validFace, `"A"`, `"A\x41"`, 1),
		"short unicode escape":    strings.Replace(validFace, `"A"`, `"A\u00e"`, 1),
		"trailing comma":          strings.Replace(validFace, `4]}}`, `4],}}`, 1),
		"nan":                     strings.Replace(validFace, `0.5`, `nan`, 1),
		"Inf":                     strings.Replace(validFace, `0.5`, `Inf`, 1),
		"single quotes":           strings.Replace(validFace, `"A"`, `'A'`, 1),
		"trailing data":           validFace + ` x`,
		"two values":              validFace + validFace,
		"too deep":                strings.Replace(validFace, `"bbox"`, `"x":`+strings.Repeat("[", 301)+strings.Repeat("]", 301)+`,"bbox"`, 1),
	} {
		for _, nd := range []bool{false, true} {
			if nd && strings.Contains(body, "\n") {
				continue // a line break splits NDJSON lines
			}
			_, err := Decode(strings.NewReader(body), nd)
			var verr *ValidationError
			if !errors.As(err, &verr) || verr.Errors[0].Type != "json_invalid" {
				t.Errorf("%s (ndjson %v): %v, want 422 json_invalid", name, nd, err)
			}
		}
	}
	// Python's json takes NaN and ±Infinity; no field does (see scan.go).
	for _, tok := range []string{"NaN", "Infinity", "-Infinity"} {
		_, err := Decode(strings.NewReader(strings.Replace(validFace, `0.5`, tok, 1)), false)
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Errors) != 1 {
			t.Errorf("%s as similarity: %v, want one 422 entry", tok, err)
		}
	}
	// Escapes of the same characters are fine.
	for _, body := range []string{
		strings.Replace(validFace, `"A"`, `"A\tB\u0000\"\\\/\b\f\n\r\u00E9"`, 1),
		strings.Replace(validFace, `0.5`, `0`, 1),
		strings.Replace(validFace, `0.5`, `-0.0e+0`, 1),
	} {
		if _, err := Decode(strings.NewReader(body), false); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// A duplicate key keeps its last value, as a Python dict does; errors of
// the values it replaced are not reported.
func TestDuplicateKeysKeepTheLastValue(t *testing.T) {
	body := `{"type":"plate_read","type":"face_match","ts_ms":-1,"ts_ms":7,"frame_source_id":"a","frame_source_id":"cam",` +
		`"payload":{"person_name":5,"person_name":"B","similarity":2,"similarity":0.5,"bbox":[1],"bbox":[1,2,3,4],` +
		`"x":1,"x":{"a":1,"b":2,"a":3},"y":[{"k":"v","k":"w"}]}}`
	evs, err := Decode(strings.NewReader(body), false)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if ev.Type != vocab.FaceMatch || ev.TsMs != 7 || ev.Source != "cam" || ev.Face.PersonName != "B" || ev.Face.Similarity != 0.5 || ev.Face.BBox != (BBox{1, 2, 3, 4}) {
		t.Fatalf("decoded %+v %+v", ev, ev.Face)
	}
	if got := string(ev.Extra["x"]); got != `{"a":3,"b":2}` {
		t.Errorf("extra x = %s, want {\"a\":3,\"b\":2}", got)
	}
	if got := string(ev.Extra["y"]); got != `[{"k":"w"}]` {
		t.Errorf("extra y = %s", got)
	}
	// Many members: the map path of visitLast.
	var b strings.Builder
	b.WriteString(`{"type":"face_match","frame_source_id":"cam","payload":{"person_name":"A","similarity":0.5,"bbox":[1,2,3,4],"z":{`)
	for i := 0; i < 40; i++ {
		b.WriteString(`"k` + string(rune('a'+i%20)) + `":` + string(rune('0'+i/20)) + `,`)
	}
	b.WriteString(`"end":true}}}`)
	evs, err = Decode(strings.NewReader(b.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	var z map[string]any
	if err := json.Unmarshal(evs[0].Extra["z"], &z); err != nil || len(z) != 21 || z["ka"] != 1.0 {
		t.Fatalf("extra z = %s (%v)", evs[0].Extra["z"], err)
	}
	if !bytes.HasPrefix(evs[0].Extra["z"], []byte(`{"ka":1,"kb":1`)) {
		t.Fatalf("keys not in first-occurrence order: %s", evs[0].Extra["z"])
	}
}

// The item limit holds while scanning, and an item with more values than
// any valid event can have is refused unparsed: decoding the worst 8 MiB
// bodies allocates a small multiple of the body, not a tree of millions
// of values.
func TestHugeBodiesOfTinyValuesStayBounded(t *testing.T) {
	n := vocab.MaxBodyBytes / 2
	array := append([]byte("["), bytes.Repeat([]byte("0,"), n-1)...)
	array[len(array)-1] = ']' // 2n-1 bytes
	oneItem := []byte(`{"type":"face_match","frame_source_id":"c","payload":{"person_name":"A","similarity":0.5,"bbox":[1,2,3,4],"x":[`)
	oneItem = append(oneItem, bytes.Repeat([]byte("0,"), (vocab.MaxBodyBytes-len(oneItem))/2-4)...)
	oneItem = append(oneItem, []byte(`0]}}`)...)
	for _, c := range []struct {
		name   string
		body   []byte
		ndjson bool
		want   string // 413 or a 422 type
	}{
		{"array of 4M zeros", array, false, "413"},
		{"one event with 4M values", oneItem, false, "too_long"},
		{"NDJSON line with 4M values", oneItem, true, "too_long"},
		{"array of 4M zeros as NDJSON", array, true, "too_long"},
	} {
		if len(c.body) > vocab.MaxBodyBytes {
			t.Fatalf("%s: body of %d bytes", c.name, len(c.body))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(bytes.NewReader(c.body), c.ndjson)
		runtime.ReadMemStats(&after)
		var verr *ValidationError
		var big *TooLargeError
		switch {
		case c.want == "413" && errors.As(err, &big):
		case c.want != "413" && errors.As(err, &verr) && verr.Errors[0].Type == c.want:
		default:
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
		// The body buffer grows by doubling (up to twice the body) and
		// the parser copies one item; 6× leaves room, and is far below
		// the tree of hundreds of bytes per value built before.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 6*uint64(len(c.body)) {
			t.Errorf("%s: decoding %d bytes allocated %d bytes", c.name, len(c.body), alloc)
		}
	}
}
