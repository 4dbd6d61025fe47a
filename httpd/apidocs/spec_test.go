package apidocs

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specMap is the served document, decoded generically: the tests look at
// what clients see, not at the Go values it was built from.
func specMap(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(Spec(), &m); err != nil {
		t.Fatalf("spec is not valid JSON: %v", err)
	}
	return m
}

// dig walks keys (object keys or array indexes as ints) and fails the test
// if one is missing.
func dig(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for i, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object", keys[:i])
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: missing", keys[:i+1])
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: not an array of > %d", keys[:i], k)
			}
			v = a[k]
		}
	}
	return v
}

func TestSpecDocument(t *testing.T) {
	m := specMap(t)
	if v, _ := m["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %q, want 3.x", v)
	}
	if got := dig(t, m, "info", "title"); got != "SecureVision Events API" {
		t.Errorf("title = %v", got)
	}
	if got := dig(t, m, "info", "version"); got != "0.1.0" {
		t.Errorf("version = %v", got)
	}
	scheme := dig(t, m, "components", "securitySchemes", securityName).(map[string]any)
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("security scheme = %v, want http bearer", scheme)
	}
	// Spec returns a copy: callers cannot corrupt the served document.
	b := Spec()
	b[0] = 'X'
	if Spec()[0] != '{' {
		t.Error("Spec shares its buffer with callers")
	}
}

// TestSpecOperations checks every Operation against the document: present,
// path parameters declared, security as Operation.Public says (httpd checks
// Public against the routes it serves without a token), and the expected
// responses.
func TestSpecOperations(t *testing.T) {
	m := specMap(t)
	paths := dig(t, m, "paths").(map[string]any)
	want := map[string][]string{
		"GET /":                                     {"200"},
		"GET /health":                               {"200", "503"},
		"GET /metrics":                              {"200"},
		"GET /events":                               {"200", "401", "422", "429"},
		"GET /events/{event_id}":                    {"200", "401", "404", "422"},
		"GET /events/{event_id}/snapshot.jpg":       {"200", "401", "404", "422"},
		"GET /faces/{event_id}":                     {"200", "401", "404", "422"},
		"GET /plates/{event_id}":                    {"200", "401", "404", "422"},
		"POST /ingest":                              {"200", "401", "403", "413", "415", "422", "503"},
		"POST /cleanup":                             {"200", "401", "403"},
		"POST /backup":                              {"200", "401", "403", "409", "503"},
		"GET /stream":                               {"101", "401", "403"},
		"POST /events/{event_id}/corrections":       {"201", "401", "403", "404", "415", "422", "503"},
		"GET /search/plates":                        {"200", "401", "422"},
		"GET /history/plates/{text}":                {"200", "401", "422"},
		"GET /history/people/{name}":                {"200", "401", "422"},
		"GET /people":                               {"200", "401"},
		"GET /watchlists":                           {"200", "401"},
		"DELETE /people/{name}":                     {"200", "401", "403", "422", "503"},
		"DELETE /history/plates/{text}":             {"200", "401", "403", "422", "503"},
		"PUT /watchlists/{list}/{plate}":            {"200", "401", "403", "404", "415", "503"},
		"DELETE /watchlists/{list}/{plate}":         {"200", "401", "403", "404", "503"},
		"GET /ui":                                   {"308"},
		"GET /ui/":                                  {"200"},
		"GET /ui/assets/{name}":                     {"200", "404"},
		"GET /stats/hourly":                         {"200", "401", "422", "429", "503"},
		"POST /webhooks":                            {"201", "401", "403", "413", "415", "422", "503"},
		"GET /webhooks":                             {"200", "401"},
		"GET /webhooks/{webhook_id}":                {"200", "401", "404"},
		"DELETE /webhooks/{webhook_id}":             {"204", "401", "403", "404"},
		"POST /webhooks/{webhook_id}/replay":        {"200", "401", "403", "404", "415", "422"},
		"POST /webhooks/{webhook_id}/rotate-secret": {"200", "401", "403", "404"},
		"POST /webhooks/{webhook_id}/enable":        {"200", "401", "403", "404"},
	}
	// The face gallery (spec_gallery.go).
	want["GET /people/{name}/faces"] = []string{"200", "401", "404", "422"}
	want["POST /people/{name}/faces"] = []string{"201", "401", "403", "404", "413", "415", "422", "503"}
	want["DELETE /people/{name}/faces/{face_id}"] = []string{"200", "401", "403", "404", "422", "503"}
	want["GET /people/{name}/faces/{face_id}"] = []string{"200", "401", "404", "422"}
	ops := Operations()
	if len(ops) != len(want) {
		t.Errorf("Operations() has %d entries, want %d: %v", len(ops), len(want), ops)
	}
	ids := map[string]bool{}
	param := regexp.MustCompile(`\{(\w+)\}`)
	nDocumented := 0
	for _, item := range paths {
		nDocumented += len(item.(map[string]any))
	}
	if nDocumented != len(ops) {
		t.Errorf("document has %d operations, Operations() %d", nDocumented, len(ops))
	}
	for _, op := range ops {
		oaPath := regexp.MustCompile(`:(\w+)`).ReplaceAllString(op.Path, "{$1}")
		key := op.Method + " " + oaPath
		item, ok := paths[oaPath].(map[string]any)
		if !ok {
			t.Errorf("%s: path missing from spec", key)
			continue
		}
		o, ok := item[strings.ToLower(op.Method)].(map[string]any)
		if !ok {
			t.Errorf("%s: method missing from spec", key)
			continue
		}
		id, _ := o["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s: operationId %q empty or duplicated", key, id)
		}
		ids[id] = true

		// Path parameters: every {name} declared, required, in: path.
		declared := map[string]bool{}
		if ps, ok := o["parameters"].([]any); ok {
			for _, p := range ps {
				p := p.(map[string]any)
				if p["in"] == "path" {
					declared[p["name"].(string)] = p["required"] == true
				}
			}
		}
		for _, mm := range param.FindAllStringSubmatch(oaPath, -1) {
			if !declared[mm[1]] {
				t.Errorf("%s: path parameter %s not declared as required", key, mm[1])
			}
		}

		resps := o["responses"].(map[string]any)
		if _, ok := resps["403"]; ok != (op.Method != "GET" || op.Path == "/stream") {
			t.Errorf("%s: 403 (foreign Origin) documented=%v, want it on every state-changing operation and /stream", key, ok)
		}
		for _, code := range want[key] {
			if _, ok := resps[code]; !ok {
				t.Errorf("%s: no %s response", key, code)
			}
		}
		if r, ok := resps["422"]; ok {
			ref := dig(t, r, "content", "application/json", "schema", "$ref")
			if ref != "#/components/schemas/HTTPValidationError" {
				t.Errorf("%s: 422 schema = %v", key, ref)
			}
		}
		for code, r := range resps {
			if code >= "400" && code != "422" && !(code == "503" && oaPath == "/health") {
				ref := dig(t, r, "content", "application/json", "schema", "$ref")
				if ref != "#/components/schemas/HTTPError" {
					t.Errorf("%s: %s schema = %v, want HTTPError", key, code, ref)
				}
			}
		}

		// Security: public paths override the bearer default with [].
		sec, ok := o["security"].([]any)
		isPublic := op.Public
		switch {
		case !ok:
			t.Errorf("%s: no explicit security", key)
		case isPublic && len(sec) != 0:
			t.Errorf("%s: public but security = %v", key, sec)
		case !isPublic && (len(sec) != 1 || dig(t, sec, 0, securityName) == nil):
			t.Errorf("%s: protected but security = %v", key, sec)
		}
		if _, ok := resps["401"]; ok == isPublic {
			t.Errorf("%s: public=%v but 401 documented=%v", key, isPublic, ok)
		}
	}
}

func TestSpecNotFoundMessages(t *testing.T) {
	m := specMap(t)
	for path, msg := range map[string]string{
		"/events/{event_id}":              "Event not found",
		"/faces/{event_id}":               "Face match event not found",
		"/plates/{event_id}":              "Plate read event not found",
		"/events/{event_id}/snapshot.jpg": "Snapshot not found",
	} {
		got := dig(t, m, "paths", path, "get", "responses", "404", "content", "application/json", "example", "detail")
		if got != msg {
			t.Errorf("%s 404 detail = %v, want %q", path, got, msg)
		}
	}
}

func TestSpecEventsQuery(t *testing.T) {
	m := specMap(t)
	get := dig(t, m, "paths", "/events", "get")
	params := map[string]map[string]any{}
	for _, p := range dig(t, get, "parameters").([]any) {
		p := p.(map[string]any)
		if p["in"] != "query" {
			t.Errorf("parameter %v not in query", p["name"])
		}
		params[p["name"].(string)] = p["schema"].(map[string]any)
	}
	for _, name := range []string{"type", "since", "until", "limit", "source", "before", "after", "order"} {
		if params[name] == nil {
			t.Errorf("/events: no %q parameter", name)
		}
	}
	// limit's default and maximum, and type's enum: TestSpecLimitsAreVocabs
	// and TestSpecVocabulary.
	if l := params["limit"]; l["minimum"] != 1.0 {
		t.Errorf("limit schema = %v, want minimum 1", l)
	}
	if e := params["order"]["enum"]; !reflect.DeepEqual(e, []any{"asc", "desc"}) {
		t.Errorf("order enum = %v", e)
	}
	// No default for order: Swagger UI would send it, and an explicit
	// order=desc would override the asc that `after` implies.
	if _, ok := params["order"]["default"]; ok {
		t.Error("order has a default")
	}
	for _, h := range []string{"X-Next-Cursor", "Link"} {
		dig(t, get, "responses", "200", "headers", h)
	}
	if got := dig(t, get, "responses", "200", "content", "application/json", "schema", "items", "$ref"); got != "#/components/schemas/Event" {
		t.Errorf("/events 200 items = %v", got)
	}
	dig(t, get, "responses", "429", "headers", "Retry-After")
	dig(t, get, "responses", "401", "headers", "WWW-Authenticate")
}

func TestSpecIngestBody(t *testing.T) {
	m := specMap(t)
	content := dig(t, m, "paths", "/ingest", "post", "requestBody", "content")
	oneOf := dig(t, content, "application/json", "schema", "oneOf").([]any)
	if len(oneOf) != 2 || dig(t, oneOf, 0, "$ref") != "#/components/schemas/EventIn" ||
		dig(t, oneOf, 1, "items", "$ref") != "#/components/schemas/EventIn" {
		t.Errorf("ingest JSON body = %v, want EventIn or []EventIn", oneOf)
	}
	nd := dig(t, content, "application/x-ndjson", "example").(string)
	for line := range strings.Lines(nd) {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("ndjson example line %q: %v", line, err)
		}
	}
	in := dig(t, m, "components", "schemas", "EventIn")
	if dig(t, in, "additionalProperties") != false {
		t.Error("EventIn allows unknown top-level fields")
	}
	if got := dig(t, in, "required"); !reflect.DeepEqual(got, []any{"type", "frame_source_id", "payload"}) {
		t.Errorf("EventIn required = %v", got)
	}
	dig(t, in, "properties", "snapshot_jpeg", "contentEncoding")
	for _, p := range []string{"FaceMatchPayload", "PlateReadPayload"} {
		if dig(t, m, "components", "schemas", p, "additionalProperties") != true {
			t.Errorf("%s does not allow extra fields", p)
		}
	}
	dig(t, m, "paths", "/ingest", "post", "responses", "200", "content", "application/json", "schema", "$ref")
}

// TestSpecValidationErrorShape pins FastAPI's 422 schema, which the
// original service's clients parse.
func TestSpecValidationErrorShape(t *testing.T) {
	m := specMap(t)
	ve := dig(t, m, "components", "schemas", "ValidationError")
	want := map[string]any{
		"title":    "ValidationError",
		"type":     "object",
		"required": []any{"loc", "msg", "type"},
		"properties": map[string]any{
			"loc": map[string]any{"title": "Location", "type": "array",
				"items": map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}},
			"msg":  map[string]any{"title": "Message", "type": "string"},
			"type": map[string]any{"title": "Error Type", "type": "string"},
		},
	}
	if !reflect.DeepEqual(ve, want) {
		t.Errorf("ValidationError = %v\nwant %v", ve, want)
	}
	hve := dig(t, m, "components", "schemas", "HTTPValidationError")
	wantH := map[string]any{
		"title": "HTTPValidationError", "type": "object",
		"properties": map[string]any{"detail": map[string]any{
			"title": "Detail", "type": "array", "items": map[string]any{"$ref": "#/components/schemas/ValidationError"}}},
	}
	if !reflect.DeepEqual(hve, wantH) {
		t.Errorf("HTTPValidationError = %v\nwant %v", hve, wantH)
	}
	if got := dig(t, m, "components", "schemas", "HTTPError", "required"); !reflect.DeepEqual(got, []any{"detail"}) {
		t.Errorf("HTTPError required = %v", got)
	}
}

func TestSpecSchemas(t *testing.T) {
	m := specMap(t)
	schemas := dig(t, m, "components", "schemas").(map[string]any)
	props := func(name string) []string {
		var ks []string
		for k := range dig(t, schemas, name, "properties").(map[string]any) {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for name, want := range map[string][]string{
		"Event":            {"correction", "created_at", "frame_source_id", "id", "payload", "ts_ms", "type"},
		"FaceMatchPayload": {"bbox", "embedding_distance", "person_name", "similarity"},
		"PlateReadPayload": {"bbox", "confidence", "list_match", "plate_text", "region"},
		"Health":           {"cluster", "event_rate", "log", "ok", "recent_events", "service", "timestamp", "version", "ws_clients"},
		"ServiceInfo":      {"auth_enabled", "service", "version", "ws_enabled"},
		"IngestResult":     {"count", "first_id", "last_id"},
		"CleanupResult":    {"deleted", "retention_days"},
		"BackupResult":     {"last_id", "path"},
		"StreamGap":        {"first_available_id", "type"},
		"StreamPong":       {"data", "type"},
	} {
		if got := props(name); !reflect.DeepEqual(got, want) {
			t.Errorf("%s properties = %v, want %v", name, got, want)
		}
	}
	// list_match's enum and BBox's length: TestSpecVocabulary and
	// TestSpecLimitsAreVocabs.
	dig(t, schemas, "Health", "properties", "log", "properties", "first_id")
	dig(t, schemas, "Health", "properties", "event_rate", "properties", "sample_duration_seconds")
}

// TestSpecRefsResolve finds every $ref and checks it names a schema.
func TestSpecRefsResolve(t *testing.T) {
	m := specMap(t)
	schemas := dig(t, m, "components", "schemas").(map[string]any)
	used := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				name, ok := strings.CutPrefix(r, "#/components/schemas/")
				if _, exists := schemas[name]; !ok || !exists {
					t.Errorf("dangling $ref %q", r)
				}
				used[name] = true
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(m)
	for name := range schemas {
		if !used[name] {
			t.Errorf("schema %s is never referenced", name)
		}
	}
}

func TestRouterPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                               "/",
		"/faces/{event_id}":               "/faces/:event_id",
		"/events/{event_id}/snapshot.jpg": "/events/:event_id/snapshot.jpg",
	} {
		if got := routerPath(in); got != want {
			t.Errorf("routerPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkSpec(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Spec()
	}
}
