// Package ingestbody writes events the way a client sends them to POST
// /ingest: the one encoder of request bodies for the tests, the benchmarks
// and the reliability drivers. Strings and numbers are written by
// encoding/json, so any text (quotes, backslashes, control characters,
// any script) is valid JSON; Go's %q quoting is not JSON escaping.
//
// It imports ingest for the Event type and the standard library only, so
// production code may use it too.
package ingestbody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/securevision/events/ingest"
)

// face and plate are the payloads' known fields, in the order the server
// stores them.
type face struct {
	PersonName        string      `json:"person_name"`
	Similarity        float64     `json:"similarity"`
	BBox              ingest.BBox `json:"bbox"`
	EmbeddingDistance *float64    `json:"embedding_distance,omitempty"`
}

type plate struct {
	PlateText  string          `json:"plate_text"`
	Confidence float64         `json:"confidence"`
	Region     string          `json:"region,omitempty"`
	ListMatch  json.RawMessage `json:"list_match,omitempty"`
	BBox       *ingest.BBox    `json:"bbox,omitempty"`
}

type item struct {
	Type     string          `json:"type"`
	TsMs     int64           `json:"ts_ms,omitempty"`
	Source   string          `json:"frame_source_id"`
	Payload  json.RawMessage `json:"payload"`
	Snapshot []byte          `json:"snapshot_jpeg,omitempty"`
}

// Append appends ev as one item of a POST /ingest body (a JSON object; a
// body is one item, a JSON array of them or NDJSON lines):
//
//	{"type":…,"ts_ms":…,"frame_source_id":…,"payload":{…},"snapshot_jpeg":…}
//
// ts_ms is left out when 0 (the server stamps the event), region when
// empty, list_match unless ev.Plate.ListMatchSet ("" is null),
// embedding_distance and a plate's bbox when nil, snapshot_jpeg (base64)
// when there is no snapshot. The payload's known fields come first, then
// ev.Extra in key order, as written (each must be valid JSON). Numbers
// must be finite: Append panics on NaN and infinities, which JSON cannot
// carry (a test that sends them writes the body by hand).
func Append(b []byte, ev *ingest.Event) []byte {
	var pl []byte
	switch {
	case ev.Face != nil:
		f := ev.Face
		pl = marshal(face{f.PersonName, f.Similarity, f.BBox, f.EmbeddingDistance})
	case ev.Plate != nil:
		p := ev.Plate
		pj := plate{PlateText: p.PlateText, Confidence: p.Confidence, Region: p.Region, BBox: p.BBox}
		if p.ListMatchSet {
			pj.ListMatch = json.RawMessage("null")
			if p.ListMatch != "" {
				pj.ListMatch = marshal(p.ListMatch)
			}
		}
		pl = marshal(pj)
	default:
		pl = []byte("{}")
	}
	if len(ev.Extra) > 0 {
		keys := make([]string, 0, len(ev.Extra))
		for k := range ev.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pl = pl[:len(pl)-1] // the closing brace
		for i, k := range keys {
			if i > 0 || len(pl) > 1 {
				pl = append(pl, ',')
			}
			pl = append(pl, marshal(k)...)
			pl = append(pl, ':')
			pl = append(pl, ev.Extra[k]...)
		}
		pl = append(pl, '}')
	}
	return append(b, marshal(item{ev.Type, ev.TsMs, ev.Source, pl, ev.Snapshot})...)
}

// marshal is json.Marshal without HTML escaping (a client has no reason
// to write < as \u003c) and without the trailing newline.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("ingestbody: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
