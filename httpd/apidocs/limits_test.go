package apidocs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

// TestSpecLimitsAreVocabs walks the served document and compares every
// length and item bound it states (maxLength, maxItems) with the limit the
// server enforces, and the page size bounds of GET /events with vocab's. A
// bound that is not in want fails too: a new limit in the schemas must say
// which constant it documents.
func TestSpecLimitsAreVocabs(t *testing.T) {
	want := map[string]map[string]int{
		"components schemas Event properties frame_source_id":                                              {"maxLength": vocab.MaxSourceLen},
		"components schemas EventIn properties frame_source_id":                                            {"maxLength": vocab.MaxSourceLen},
		"components schemas EventIn properties snapshot_jpeg":                                              {"maxLength": base64.StdEncoding.EncodedLen(vocab.MaxSnapshotBytes)},
		"components schemas FaceMatchPayload properties person_name":                                       {"maxLength": vocab.MaxPersonNameLen},
		"components schemas PlateReadPayload properties plate_text":                                        {"maxLength": vocab.MaxPlateTextLen},
		"components schemas PlateReadPayload properties region":                                            {"maxLength": vocab.MaxRegionLen},
		"components schemas BBox":                                                                          {"maxItems": len(ingest.BBox{}), "minItems": len(ingest.BBox{})},
		"paths /events get parameters source schema":                                                       {"maxLength": vocab.MaxSourceLen},
		"paths /events get parameters limit schema":                                                        {"maximum": vocab.MaxQueryLimit, "default": vocab.DefaultQueryLimit},
		"paths /stream get parameters source schema":                                                       {"maxLength": vocab.MaxSourceLen},
		"paths /ingest post requestBody content application/json schema oneOf 1":                           {"maxItems": vocab.MaxItems},
		"components schemas CorrectionIn properties person_name":                                           {"maxLength": vocab.MaxPersonNameLen},
		"components schemas CorrectionIn properties plate_text":                                            {"maxLength": vocab.MaxPlateTextLen},
		"components schemas WebhookIn properties person_name":                                              {"maxLength": vocab.MaxPersonNameLen},
		"components schemas CorrectionIn properties note":                                                  {"maxLength": vocab.MaxNoteLen},
		"paths /watchlists/{list}/{plate} put parameters plate schema":                                     {"maxLength": vocab.MaxPlateTextLen},
		"paths /watchlists/{list}/{plate} delete parameters plate schema":                                  {"maxLength": vocab.MaxPlateTextLen},
		"paths /watchlists/{list}/{plate} put requestBody content application/json schema properties note": {"maxLength": vocab.MaxNoteLen},
		"components schemas SourceHourly properties counts":                                                {"maxItems": vocab.StatsHours, "minItems": vocab.StatsHours},
		"components schemas OtherHourly properties counts":                                                 {"maxItems": vocab.StatsHours, "minItems": vocab.StatsHours},
		"paths /stats/hourly get parameters limit schema":                                                  {"maximum": vocab.StatsMaxSources, "default": vocab.StatsDefaultSources},
		"paths /ingest post parameters Idempotency-Key schema":                                             {"maxLength": idempotency.MaxKeyLen},
	}
	// The face gallery (spec_gallery.go).
	for _, op := range []string{"/people/{name}/faces get", "/people/{name}/faces post", "/people/{name}/faces/{face_id} delete", "/people/{name}/faces/{face_id} get"} {
		want["paths "+op+" parameters name schema"] = map[string]int{"maxLength": vocab.MaxPersonNameLen}
	}
	got := map[string]map[string]int{}
	var walk func(path []string, v any)
	walk = func(path []string, v any) {
		switch v := v.(type) {
		case map[string]any:
			key := strings.Join(path, " ")
			for _, kw := range []string{"maxLength", "maxItems"} {
				if n, ok := v[kw].(float64); ok {
					if got[key] == nil {
						got[key] = map[string]int{}
					}
					got[key][kw] = int(n)
				}
			}
			// The other keywords are compared where want names them:
			// elsewhere minimum and maximum bound scores to [0, 1].
			for kw := range want[key] {
				if n, ok := v[kw].(float64); ok {
					if got[key] == nil {
						got[key] = map[string]int{}
					}
					got[key][kw] = int(n)
				}
			}
			for k, c := range v {
				walk(append(path, k), c)
			}
		case []any:
			for i, c := range v {
				// Parameters by name, anything else by index.
				name := fmt.Sprint(i)
				if m, ok := c.(map[string]any); ok {
					if n, ok := m["name"].(string); ok && m["in"] != nil {
						name = n
					}
				}
				walk(append(path, name), c)
			}
		}
	}
	walk(nil, specMap(t))
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[key]; !ok {
			t.Errorf("%s: bounds %v are not checked against vocab: add them to want", key, got[key])
		} else if !maps.Equal(got[key], w) {
			t.Errorf("%s: bounds %v, want %v", key, got[key], w)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[key]; !ok {
			t.Errorf("%s: no bounds in the document, want %v", key, want[key])
		}
	}
}

// TestSpecVocabulary: the enums, the identity and the error bodies of the
// document are vocab's.
func TestSpecVocabulary(t *testing.T) {
	m := specMap(t)
	types := []any{}
	for _, n := range vocab.TypeNames() {
		types = append(types, n)
	}
	enums := map[string][]any{
		"EventType":  dig(t, m, "components", "schemas", "EventType", "enum").([]any),
		"list_match": dig(t, m, "components", "schemas", "PlateReadPayload", "properties", "list_match", "enum").([]any),
	}
	for _, p := range []string{"/events", "/stream"} {
		for _, prm := range dig(t, m, "paths", p, "get", "parameters").([]any) {
			if prm := prm.(map[string]any); prm["name"] == "type" {
				enums[p+" ?type="] = dig(t, prm, "schema", "enum").([]any)
			}
		}
	}
	for name, got := range enums {
		want := types
		switch name {
		case "list_match":
			want = []any{vocab.Whitelist, vocab.Blacklist, nil}
		case "EventType": // what a camera posts: the detections only
			want = []any{}
			for _, n := range vocab.DetectionTypeNames() {
				want = append(want, n)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s enum = %v, want %v", name, got, want)
		}
	}
	if len(enums) != 4 {
		t.Errorf("found the enums %v, want EventType, list_match and ?type= of /events and /stream", slices.Collect(maps.Keys(enums)))
	}
	if got := dig(t, m, "info", "title"); got != vocab.ServiceName {
		t.Errorf("title = %v, want %s", got, vocab.ServiceName)
	}
	if got := dig(t, m, "info", "version"); got != vocab.Version {
		t.Errorf("version = %v, want %s", got, vocab.Version)
	}
	// The error schemas have the members of the bodies the server writes.
	for schema, body := range map[string]any{
		"HTTPError":           vocab.ErrorBody{},
		"HTTPValidationError": vocab.ValidationBody{},
		"ValidationError":     vocab.FieldError{},
	} {
		b, _ := json.Marshal(body)
		var members map[string]any
		json.Unmarshal(b, &members)
		props := dig(t, m, "components", "schemas", schema, "properties").(map[string]any)
		if got, want := slices.Sorted(maps.Keys(props)), slices.Sorted(maps.Keys(members)); !slices.Equal(got, want) {
			t.Errorf("%s properties %v, the server's body has %v", schema, got, want)
		}
	}
}
