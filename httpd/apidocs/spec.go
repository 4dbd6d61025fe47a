package apidocs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/securevision/events/internal/vocab"
)

// securityName is the bearer scheme's key in components.securitySchemes;
// "HTTPBearer" is the name FastAPI gives it, kept for seed-era tooling.
const securityName = "HTTPBearer"

// The document states the limits the server enforces by reading them from
// vocab, as the server does; TestSpecLimitsAreVocabs fails if a limit in
// the schemas is not one of vocab's.

// typeEnum lists type names for an enum.
func typeEnum(names []string) []any {
	var e []any
	for _, n := range names {
		e = append(e, n)
	}
	return e
}

// grouped writes n with thousands separators: 10,000.
func grouped(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// size writes a byte count in the largest binary unit that divides it.
func size(n int) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// Operation is one documented route, Path in httprouter syntax
// ("/faces/:event_id"). Public reports that the document lists no security
// for it: the server serves it without the bearer token.
type Operation struct {
	Method string
	Path   string
	Public bool
}

// endpoint is one row of the route table the spec and Operations are built
// from. path uses OpenAPI syntax ("/faces/{event_id}"). public describes
// the server's rule (httpd decides which routes are public, and its tests
// check that the document agrees).
type endpoint struct {
	method string
	path   string
	public bool
	op     *operation
}

var (
	specOnce = sync.OnceValue(func() []byte {
		b, err := json.Marshal(buildDocument())
		if err != nil {
			// The document is a constant built from literals: failing to
			// marshal it is a programming error, caught by the tests.
			panic(fmt.Sprintf("apidocs: marshal spec: %v", err))
		}
		return b
	})
	endpointsOnce = sync.OnceValue(endpoints)
)

// Spec returns the OpenAPI 3.1 document, as served at /openapi.json. The
// caller owns the returned slice.
func Spec() []byte {
	return append([]byte(nil), specOnce()...)
}

// Operations lists every route the spec documents, in document order, with
// httprouter path syntax, for route/spec drift tests.
func Operations() []Operation {
	eps := endpointsOnce()
	ops := make([]Operation, 0, len(eps))
	for _, e := range eps {
		ops = append(ops, Operation{Method: e.method, Path: routerPath(e.path), Public: e.public})
	}
	return ops
}

// routerPath turns "/faces/{event_id}" into "/faces/:event_id".
func routerPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(segs, "/")
}

func buildDocument() *document {
	d := &document{
		OpenAPI: "3.1.0",
		Info: info{
			Title:       vocab.ServiceName,
			Version:     vocab.Version,
			Description: apiDescription,
		},
		// A relative URL: requests go to whichever host served this document.
		Servers: []server{{URL: "/", Description: "This server"}},
		// Bearer by default; public operations override it with [].
		Security: []map[string][]string{{securityName: {}}},
		Tags: []tag{
			{Name: "service", Description: "Service information, health and metrics (public)."},
			{Name: "events", Description: "Query stored detection events."},
			{Name: "ingest", Description: "Append detection events."},
			{Name: "admin", Description: "Retention and backups."},
			{Name: "stream", Description: "Live events over WebSocket."},
		},
		Components: components{
			Schemas: componentSchemas(),
			SecuritySchemes: ordered[*securityScheme]{{securityName, &securityScheme{
				Type:   "http",
				Scheme: "bearer",
				Description: "Required on every route except /, /health, /metrics, /docs, /redoc and " +
					"/openapi.json when the server has SECUREVISION__API__AUTH_TOKEN set. " +
					"Browsers may pass it to /stream as ?token=.",
			}}},
		},
	}
	for _, e := range endpointsOnce() {
		method := kv[*operation]{strings.ToLower(e.method), e.op}
		i := slices.IndexFunc(d.Paths, func(p kv[pathItem]) bool { return p.Key == e.path })
		if i < 0 {
			d.Paths = append(d.Paths, kv[pathItem]{e.path, pathItem{method}})
		} else {
			d.Paths[i].Value = append(d.Paths[i].Value, method)
		}
	}
	return d
}

const apiDescription = `Face-recognition and licence-plate detection events: query them over REST,
follow them live over WebSocket, append them with ` + "`POST /ingest`" + `.

**Authentication.** When the server runs with ` + "`SECUREVISION__API__AUTH_TOKEN`" + `, every route
except ` + "`/`, `/health`, `/metrics`, `/docs`, `/redoc` and `/openapi.json`" + ` needs
` + "`Authorization: Bearer <token>`" + ` (` + "`/stream`" + ` also accepts ` + "`?token=`" + `).
A missing or wrong token answers 401 with ` + "`WWW-Authenticate: Bearer`" + `.

**Browsers.** A state-changing request (POST, PUT, PATCH, DELETE) or a ` + "`/stream`" + ` WebSocket
upgrade whose ` + "`Origin`" + ` header is neither this server's own origin nor listed in
` + "`SECUREVISION__API__CORS_ORIGINS`" + ` (` + "`*`" + ` allows all) answers 403, with auth on or off:
web pages on other sites cannot write, run retention or read the stream through a visitor's
browser. Clients that send no ` + "`Origin`" + ` (curl, cameras, scripts) are not affected.
Request bodies must be ` + "`application/json`" + ` or ` + "`application/x-ndjson`" + ` (parameters such as
` + "`charset`" + ` allowed), else 415; a body without ` + "`Content-Type`" + ` is read as JSON.

**Event ids** are the sequence numbers of the server's append-only log: they start at 1,
strictly increase and are never reused. They are the cursor for ` + "`GET /events`" + ` pages
(` + "`before`/`after`" + `) and for WebSocket replay (` + "`after`" + `).

**Errors** use FastAPI's shapes: ` + "`{\"detail\": \"...\"}`" + `, and for invalid parameters or bodies
422 with ` + "`{\"detail\": [{\"loc\": [...], \"msg\": \"...\", \"type\": \"...\"}]}`" + `.
Unknown routes answer ` + "`404 {\"detail\":\"Not Found\"}`" + `. With a rate limit configured
(` + "`SECUREVISION__API__RATE_LIMIT_PER_MINUTE`" + `) REST calls beyond it answer 429 with ` + "`Retry-After`" + `.`

// ---- schema helpers ----

func ref(name string) *schema { return &schema{Ref: "#/components/schemas/" + name} }

func str(desc string) *schema { return &schema{Type: "string", Description: desc} }

func int64s(desc string) *schema {
	return &schema{Type: "integer", Format: "int64", Description: desc}
}

func num(desc string) *schema { return &schema{Type: "number", Description: desc} }

func boolean(desc string) *schema { return &schema{Type: "boolean", Description: desc} }

func arrayOf(items *schema, desc string) *schema {
	return &schema{Type: "array", Items: items, Description: desc}
}

func object(title, desc string, required []string, props ...kv[*schema]) *schema {
	return &schema{Type: "object", Title: title, Description: desc, Required: required, Properties: props}
}

func prop(name string, s *schema) kv[*schema] { return kv[*schema]{name, s} }

func unit(min, max float64, desc string) *schema {
	s := num(desc)
	s.Minimum, s.Maximum = min, max
	return s
}

func componentSchemas() ordered[*schema] {
	eventType := &schema{
		Type: "string", Title: "EventType", Enum: typeEnum(vocab.DetectionTypeNames()),
		Description: "Kind of detection; selects the payload schema.",
	}
	bbox := &schema{
		Type: "array", Title: "BBox", Items: &schema{Type: "number"}, MinItems: 4, MaxItems: 4,
		Description: "Bounding box [x1, y1, x2, y2] in frame pixels; finite numbers with x1 ≤ x2 and y1 ≤ y2.",
		Examples:    []any{[]any{100, 150, 250, 300}},
	}

	personName := str("Matched person's name from the gallery, or \"unknown\" below the similarity threshold.")
	personName.MinLength, personName.MaxLength = 1, vocab.MaxPersonNameLen
	embDist := num("Face embedding distance (lower is better).")
	embDist.Minimum = 0
	face := object("FaceMatchPayload",
		"Payload of a face_match event. Extra fields a producer sends are kept (forward compatibility, size-capped).",
		[]string{"person_name", "similarity", "bbox"},
		prop("person_name", personName),
		prop("similarity", unit(0, 1, "Similarity score, 0.0–1.0, higher is better.")),
		prop("bbox", ref("BBox")),
		prop("embedding_distance", embDist),
	)
	face.AdditionalProperties = true
	face.Examples = []any{map[string]any{
		"person_name": "John Doe", "similarity": 0.92, "bbox": []any{100, 150, 250, 300}, "embedding_distance": 0.35,
	}}

	plateText := str("OCR'd licence plate text, normalised.")
	plateText.MinLength, plateText.MaxLength = 1, vocab.MaxPlateTextLen
	region := str("Plate region, e.g. \"US-CA\", \"EU-DE\".")
	region.MaxLength = vocab.MaxRegionLen
	plate := object("PlateReadPayload",
		"Payload of a plate_read event. Extra fields a producer sends are kept (forward compatibility, size-capped).",
		[]string{"plate_text", "confidence", "region"},
		prop("plate_text", plateText),
		prop("confidence", unit(0, 1, "OCR confidence, 0.0–1.0.")),
		prop("region", region),
		prop("list_match", &schema{
			Type: []string{"string", "null"}, Enum: []any{vocab.Whitelist, vocab.Blacklist, nil},
			Description: "Watchlist verdict. Always present on stored events (null: on no list). " +
				"On ingest it may be omitted, and the server then looks the plate up in its watchlists.",
		}),
		prop("bbox", ref("BBox")),
	)
	plate.AdditionalProperties = true
	plate.Examples = []any{map[string]any{
		"plate_text": "ABC1234", "confidence": 0.88, "region": "US-CA", "list_match": vocab.Whitelist, "bbox": []any{300, 400, 450, 480},
	}}

	payload := func() *schema {
		return &schema{
			OneOf:       []*schema{ref("FaceMatchPayload"), ref("PlateReadPayload")},
			Description: "FaceMatchPayload when type is face_match, PlateReadPayload when type is plate_read.",
		}
	}
	source := func(desc string) *schema {
		s := str(desc)
		s.MinLength, s.MaxLength = 1, vocab.MaxSourceLen
		return s
	}
	id := int64s("Event id: the log sequence number (starts at 1, strictly increasing, never reused).")
	id.Minimum = 1
	createdAt := &schema{
		Type: "string", Format: "date-time",
		Description: "Ingest time, RFC 3339 UTC with milliseconds; never decreases along the log.",
		Examples:    []any{"2024-01-01T00:00:05.000Z"},
	}
	event := object("Event", "One stored event: a detection, or (listed only with ?type=) an operator's action, "+
		"whose payload is the action's.",
		[]string{"id", "type", "ts_ms", "frame_source_id", "created_at", "payload"},
		prop("id", id),
		prop("type", &schema{Type: "string", Enum: typeEnum(vocab.TypeNames())}),
		prop("ts_ms", int64s("Detection time, Unix milliseconds.")),
		prop("frame_source_id", source("Camera / source identifier.")),
		prop("created_at", createdAt),
		prop("payload", payload()),
		prop("correction", ref("Correction")),
	)
	event.Examples = []any{exampleFaceEvent, examplePlateEvent}

	tsIn := int64s("Detection time, Unix milliseconds, positive. Missing: the server's clock.")
	tsIn.Minimum = 1
	snap := &schema{
		Type: "string", ContentEncoding: "base64", ContentMediaType: "image/jpeg",
		MaxLength: base64.StdEncoding.EncodedLen(vocab.MaxSnapshotBytes),
		Description: "Optional JPEG crop (base64, at most " + size(vocab.MaxSnapshotBytes) + " decoded). Stored beside " +
			"the event, served at /events/{event_id}/snapshot.jpg, never echoed in the event's JSON.",
	}
	eventIn := object("EventIn", "One detection result to append. Unknown top-level fields are rejected.",
		[]string{"type", "frame_source_id", "payload"},
		prop("type", ref("EventType")),
		prop("ts_ms", tsIn),
		prop("frame_source_id", source(fmt.Sprintf("Camera / source identifier: 1–%d printable characters.", vocab.MaxSourceLen))),
		prop("payload", payload()),
		prop("snapshot_jpeg", snap),
	)
	eventIn.AdditionalProperties = false
	eventIn.Examples = []any{exampleFaceIn}

	count := func(desc string) *schema {
		s := &schema{Type: "integer", Description: desc}
		s.Minimum = 0
		return s
	}
	ingestResult := object("IngestResult", "The appended batch: ids first_id..last_id, contiguous.",
		[]string{"count", "first_id", "last_id"},
		prop("count", count("Number of events appended.")),
		prop("first_id", int64s("Id of the first appended event.")),
		prop("last_id", int64s("Id of the last appended event.")),
	)
	ingestResult.Examples = []any{map[string]any{"count": 2, "first_id": 125, "last_id": 126}}

	root := object("ServiceInfo", "Basic service information.",
		[]string{"service", "version", "ws_enabled", "auth_enabled"},
		prop("service", str("Service name.")),
		prop("version", str("API version.")),
		prop("ws_enabled", boolean("Whether /stream is enabled.")),
		prop("auth_enabled", boolean("Whether a bearer token is required.")),
	)
	root.Examples = []any{map[string]any{"service": vocab.ServiceName, "version": vocab.Version, "ws_enabled": true, "auth_enabled": false}}

	health := object("Health",
		fmt.Sprintf("Health and event statistics, answered from memory. recent_events counts events whose ts_ms "+
			"lies in the last %d s.", vocab.RecentWindowSeconds),
		[]string{"ok", "timestamp", "service", "version", "ws_clients", "recent_events", "event_rate"},
		prop("ok", boolean("Overall health: false when the store cannot be read or written (status 503).")),
		prop("timestamp", int64s("Server time, Unix milliseconds.")),
		prop("service", str("Service name.")),
		prop("version", str("API version.")),
		prop("ws_clients", count("Open /stream connections.")),
		prop("recent_events", object("RecentEvents", fmt.Sprintf("Event counts over the last %d s (by ts_ms).", vocab.RecentWindowSeconds),
			[]string{"total", "face_matches", "plate_reads"},
			prop("total", count("All events.")),
			prop("face_matches", count("face_match events.")),
			prop("plate_reads", count("plate_read events.")),
		)),
		prop("event_rate", object("EventRate", "Processing rate.",
			[]string{"events_per_second", "sample_duration_seconds"},
			prop("events_per_second", num("recent_events.total / sample_duration_seconds.")),
			prop("sample_duration_seconds", num(fmt.Sprintf("Measurement window (%d.0).", vocab.RecentWindowSeconds))),
		)),
		prop("log", object("LogState", "The event log's retained id range (0 and 0 when empty).",
			[]string{"first_id", "last_id"},
			prop("first_id", int64s("Oldest retained event id.")),
			prop("last_id", int64s("Newest event id.")),
		)),
	)
	health.Examples = []any{exampleHealth(true)}

	cleanup := object("CleanupResult", "Outcome of a retention run.",
		[]string{"deleted", "retention_days"},
		prop("deleted", count("Number of events deleted.")),
		prop("retention_days", count("Configured retention period in days (0: keep forever).")),
	)
	cleanup.Examples = []any{map[string]any{"deleted": 150, "retention_days": 30}}

	backup := object("BackupResult", "A consistent copy of the store, written on the server.",
		[]string{"path", "last_id"},
		prop("path", str("The backup's directory, relative to SECUREVISION__EVENTS__BACKUP_DIR: "+
			"events-<UTC time to the millisecond>-<sequence>. Never an absolute server path.")),
		prop("last_id", int64s("Id of the newest event the backup contains.")),
	)
	backup.Examples = []any{map[string]any{"path": "events-20240101T000000.000Z-1", "last_id": 126}}

	httpError := object("HTTPError", "Error body for 401, 403, 404, 405, 409, 413, 415, 429, 500 and 503.",
		[]string{"detail"}, prop("detail", &schema{Type: "string", Title: "Detail"}))
	httpError.Examples = []any{map[string]any{"detail": "Event not found"}}

	// ValidationError and HTTPValidationError are FastAPI's, verbatim.
	validationError := object("ValidationError", "", []string{"loc", "msg", "type"},
		prop("loc", &schema{Type: "array", Title: "Location",
			Items: &schema{AnyOf: []*schema{{Type: "string"}, {Type: "integer"}}}}),
		prop("msg", &schema{Type: "string", Title: "Message"}),
		prop("type", &schema{Type: "string", Title: "Error Type"}),
	)
	httpValidationError := object("HTTPValidationError", "", nil,
		prop("detail", &schema{Type: "array", Title: "Detail", Items: ref("ValidationError")}))

	pong := object("StreamPong", "Answer to a text \"ping\" message.", []string{"type", "data"},
		prop("type", &schema{Type: "string", Const: "pong"}),
		prop("data", &schema{Type: "string", Const: "ping"}))
	gap := object("StreamGap",
		"First message when `after` points below the oldest retained event: replay resumes at first_available_id.",
		[]string{"type", "first_available_id"},
		prop("type", &schema{Type: "string", Const: "gap"}),
		prop("first_available_id", int64s("Oldest retained event id; replay starts here.")))
	streamErr := object("StreamError", "The server could not serve the stream (for example the store failed).",
		[]string{"type"},
		prop("type", &schema{Type: "string", Const: "error"}),
		prop("detail", str("What went wrong.")))
	streamErr.AdditionalProperties = true

	out := ordered[*schema]{
		{"Event", event},
		{"EventType", eventType},
		{"FaceMatchPayload", face},
		{"PlateReadPayload", plate},
		{"BBox", bbox},
		{"EventIn", eventIn},
		{"IngestResult", ingestResult},
		{"ServiceInfo", root},
		{"Health", health},
		{"CleanupResult", cleanup},
		{"BackupResult", backup},
		{"StreamPong", pong},
		{"StreamGap", gap},
		{"StreamError", streamErr},
		{"HTTPError", httpError},
		{"ValidationError", validationError},
		{"HTTPValidationError", httpValidationError},
	}
	for _, f := range moreSchemas {
		out = append(out, f()...)
	}
	for _, f := range amendSchemas {
		f(out)
	}
	return out
}

// moreSchemas and moreEndpoints hold the schemas and routes of the API's
// feature areas (webhooks, identities, ...), each in its own spec_*.go
// file that appends to them from init; init runs in file name order, so
// the document's order is fixed.
var (
	moreSchemas   []func() ordered[*schema]
	moreEndpoints []func() []endpoint
	// amendSchemas and amendEndpoints let a feature file add to what is
	// built here (a parameter, a member of /health) instead of editing it.
	amendSchemas   []func(ordered[*schema])
	amendEndpoints []func([]endpoint)
)

// ---- examples ----

var (
	exampleFaceEvent = map[string]any{
		"id": 123, "type": vocab.FaceMatch, "ts_ms": int64(1704067200000), "frame_source_id": "camera_front_door",
		"created_at": "2024-01-01T00:00:00.000Z",
		"payload":    map[string]any{"person_name": "John Doe", "similarity": 0.92, "bbox": []any{100, 150, 250, 300}, "embedding_distance": 0.35},
	}
	examplePlateEvent = map[string]any{
		"id": 124, "type": vocab.PlateRead, "ts_ms": int64(1704067205000), "frame_source_id": "camera_driveway",
		"created_at": "2024-01-01T00:00:05.000Z",
		"payload":    map[string]any{"plate_text": "ABC1234", "confidence": 0.88, "region": "US-CA", "list_match": vocab.Whitelist, "bbox": []any{300, 400, 450, 480}},
	}
	exampleFaceIn = map[string]any{
		"type": vocab.FaceMatch, "ts_ms": int64(1704067210000), "frame_source_id": "camera_front_door",
		"payload": map[string]any{"person_name": "Jane Smith", "similarity": 0.95, "bbox": []any{120, 160, 270, 320}},
	}
	examplePlateIn = map[string]any{
		"type": vocab.PlateRead, "ts_ms": int64(1704067211000), "frame_source_id": "camera_driveway",
		"payload": map[string]any{"plate_text": "XYZ987", "confidence": 0.81, "region": "US-CA"},
	}
)

func exampleHealth(ok bool) map[string]any {
	return map[string]any{
		"ok": ok, "timestamp": int64(1704067200000), "service": vocab.ServiceName, "version": vocab.Version, "ws_clients": 2,
		"recent_events": map[string]any{"total": 42, "face_matches": 15, "plate_reads": 27},
		"event_rate":    map[string]any{"events_per_second": 0.14, "sample_duration_seconds": float64(vocab.RecentWindowSeconds)},
		"log":           map[string]any{"first_id": 1, "last_id": 124},
	}
}

// ---- parameter and response helpers ----

func query(name, desc string, s *schema) *parameter {
	return &parameter{Name: name, In: "query", Description: desc, Schema: s}
}

func eventIDParam() *parameter {
	return &parameter{Name: "event_id", In: "path", Required: true, Description: "Event id.",
		Schema: &schema{Type: "integer", Format: "int64", Title: "Event Id"}, Example: 123}
}

func jsonContent(s *schema, ex any) ordered[*mediaType] {
	return ordered[*mediaType]{{"application/json", &mediaType{Schema: s, Example: ex}}}
}

func okJSON(desc string, s *schema, ex any) kv[*response] {
	return kv[*response]{"200", &response{Description: desc, Content: jsonContent(s, ex)}}
}

func errResp(code, desc, detail string) kv[*response] {
	return kv[*response]{code, &response{Description: desc,
		Content: jsonContent(ref("HTTPError"), map[string]any{"detail": detail})}}
}

func unauthorized() kv[*response] {
	r := errResp("401", "Missing or invalid bearer token (only when auth is enabled).", "Authentication required")
	r.Value.Headers = ordered[*header]{{"WWW-Authenticate", &header{Schema: &schema{Type: "string", Const: "Bearer"}}}}
	return r
}

func tooMany() kv[*response] {
	r := errResp("429", "Rate limit exceeded (only when SECUREVISION__API__RATE_LIMIT_PER_MINUTE is set).",
		"Rate limit exceeded: try again later")
	r.Value.Headers = ordered[*header]{{"Retry-After", &header{
		Description: "Seconds to wait before retrying.", Schema: &schema{Type: "integer"}}}}
	return r
}

func crossOrigin() kv[*response] {
	return errResp("403", "The Origin header names a site that is neither this server nor listed in "+
		"SECUREVISION__API__CORS_ORIGINS (browsers send it; other clients need not).",
		"Cross-origin request refused: this Origin is not allowed (SECUREVISION__API__CORS_ORIGINS)")
}

func unsupportedMediaType() kv[*response] {
	return errResp("415", "The body is neither application/json nor application/x-ndjson.",
		"Unsupported Media Type: send the body as application/json or application/x-ndjson")
}

// withResponse adds r to op's responses in status code order, unless op
// has its own answer for that status.
func withResponse(op *operation, r kv[*response]) {
	if slices.ContainsFunc(op.Responses, func(x kv[*response]) bool { return x.Key == r.Key }) {
		return
	}
	i := slices.IndexFunc(op.Responses, func(x kv[*response]) bool { return x.Key > r.Key })
	if i < 0 {
		i = len(op.Responses)
	}
	op.Responses = slices.Insert(op.Responses, i, r)
}

func unavailable(detail string) kv[*response] {
	return errResp("503", "The event store cannot be read or written.", detail)
}

func invalid(loc []any, msg, typ string) kv[*response] {
	return kv[*response]{"422", &response{Description: "Validation Error",
		Content: jsonContent(ref("HTTPValidationError"), map[string]any{
			"detail": []any{map[string]any{"loc": loc, "msg": msg, "type": typ}},
		})}}
}

func invalidEventID() kv[*response] {
	return invalid([]any{"path", "event_id"}, "Input should be a valid integer, unable to parse string as an integer", "int_parsing")
}

func getByID(id, tagName, summary, desc, notFoundDesc, notFound string) *operation {
	return &operation{
		Tags: []string{tagName}, Summary: summary, Description: desc, OperationID: id,
		Parameters: []*parameter{eventIDParam()},
		Responses: ordered[*response]{
			okJSON("The event.", ref("Event"), nil),
			unauthorized(),
			errResp("404", notFoundDesc, notFound),
			invalidEventID(),
			tooMany(),
		},
	}
}

// ---- the route table ----

func endpoints() []endpoint {
	int64Min := func(desc string, min int) *schema {
		s := int64s(desc)
		s.Minimum = min
		return s
	}
	limit := &schema{Type: "integer", Default: vocab.DefaultQueryLimit, Minimum: 1, Maximum: vocab.MaxQueryLimit}
	sourceSchema := &schema{Type: "string", MinLength: 1, MaxLength: vocab.MaxSourceLen}
	typeSchema := &schema{Type: "string", Enum: typeEnum(vocab.TypeNames()),
		Description: "Without it, only detections (face_match, plate_read); the other types are operators' actions."}

	streamMessage := &schema{
		OneOf: []*schema{ref("Event"), ref("StreamPong"), ref("StreamGap"), ref("StreamError")},
		Description: "Server → client text messages, one JSON object each: events (the Event schema), " +
			"pong answers, the gap notice and errors.",
	}

	eps := []endpoint{
		{method: "GET", path: "/", public: true, op: &operation{
			Tags: []string{"service"}, Summary: "Service information", OperationID: "root",
			Responses: ordered[*response]{okJSON("Service information.", ref("ServiceInfo"), nil), tooMany()},
		}},
		{method: "GET", path: "/health", public: true, op: &operation{
			Tags: []string{"service"}, Summary: "Health check",
			Description: "Health and event statistics. Status 503 with ok=false when the store cannot be read or written.",
			OperationID: "health",
			Responses: ordered[*response]{
				okJSON("Healthy.", ref("Health"), nil),
				{"503", &response{Description: "Unhealthy: the store cannot be read or written.",
					Content: jsonContent(ref("Health"), exampleHealth(false))}},
			},
		}},
		{method: "GET", path: "/metrics", public: true, op: &operation{
			Tags: []string{"service"}, Summary: "Prometheus metrics", OperationID: "metrics",
			Description: "Prometheus text exposition format.",
			Responses: ordered[*response]{{"200", &response{Description: "Metrics in the Prometheus text format.",
				Content: ordered[*mediaType]{{"text/plain; version=0.0.4; charset=utf-8", &mediaType{
					Schema:  &schema{Type: "string"},
					Example: "# TYPE securevision_eventlog_appended_records_total counter\nsecurevision_eventlog_appended_records_total 126\n",
				}}}}}},
		}},
		{method: "GET", path: "/events", op: &operation{
			Tags: []string{"events"}, Summary: "Query events", OperationID: "list_events",
			Description: "Events matching every given filter, ordered by id: newest first (`order=desc`, the " +
				"default) or oldest first (`order=asc`, the default when `after` is given).\n\n" +
				"**Paging.** Every non-empty page carries `X-Next-Cursor` (the id farthest along the direction of travel) and, when more " +
				"may follow, a `Link: <…>; rel=\"next\"` header (RFC 8288) with the same filters and the cursor set. " +
				"Following `next` links visits each matching event exactly once, even while events are appended and " +
				"retention trims the log. The body is a plain JSON array.",
			Parameters: []*parameter{
				query("type", "Only events of this type.", typeSchema),
				query("since", "Only events with ts_ms > since (exclusive, Unix milliseconds).", int64s("")),
				query("until", "Only events with ts_ms ≤ until (inclusive, Unix milliseconds).", int64s("")),
				query("limit", "Maximum number of events to return.", limit),
				query("source", "Only events from this frame_source_id.", sourceSchema),
				query("before", "Cursor: only events with id < before. Excludes `after`.", int64Min("", 1)),
				query("after", "Cursor: only events with id > after; implies order=asc unless `order` is given. Excludes `before`.", int64Min("", 0)),
				query("order", "Id order of the page: `desc` (default) or `asc` (default when `after` is given).",
					&schema{Type: "string", Enum: []any{"asc", "desc"}}),
			},
			Responses: ordered[*response]{
				{"200", &response{
					Description: "Matching events (possibly empty).",
					Headers: ordered[*header]{
						{"X-Next-Cursor", &header{
							Description: "Id of the page's event farthest along the direction of travel (toward newer ids " +
								"with `after`, older ones otherwise, whatever `order` says): pass it as `after` or `before` respectively to continue. " +
								"Present on every non-empty page.",
							Schema: &schema{Type: "integer", Format: "int64"}}},
						{"Link", &header{
							Description: "RFC 8288 link to the next page, with the same filters, when more may follow: " +
								"`</events?type=face_match&limit=100&before=123>; rel=\"next\"`.",
							Schema: &schema{Type: "string"}}},
					},
					Content: jsonContent(arrayOf(ref("Event"), ""), []any{exampleFaceEvent, examplePlateEvent}),
				}},
				unauthorized(),
				invalid([]any{"query", "limit"}, "Input should be less than or equal to "+strconv.Itoa(vocab.MaxQueryLimit), "less_than_equal"),
				tooMany(),
			},
		}},
		{method: "GET", path: "/events/{event_id}", op: getByID("get_event", "events", "Get an event",
			"Any event, by id.", "No such event.", "Event not found")},
		{method: "GET", path: "/events/{event_id}/snapshot.jpg", op: &operation{
			Tags: []string{"events"}, Summary: "Get an event's snapshot", OperationID: "get_event_snapshot",
			Description: "The JPEG crop stored with the event (sent as snapshot_jpeg on ingest, or cut by the vision pipeline).",
			Parameters:  []*parameter{eventIDParam()},
			Responses: ordered[*response]{
				{"200", &response{Description: "The JPEG snapshot.", Content: ordered[*mediaType]{
					{"image/jpeg", &mediaType{Schema: &schema{Type: "string", Format: "binary"}}}}}},
				unauthorized(),
				errResp("404", "The event does not exist or has no snapshot.", "Snapshot not found"),
				invalidEventID(),
				tooMany(),
			},
		}},
		{method: "GET", path: "/faces/{event_id}", op: getByID("get_face", "events", "Get a face match",
			"A face_match event, by id.", "No such event, or it is not a face_match.", "Face match event not found")},
		{method: "GET", path: "/plates/{event_id}", op: getByID("get_plate", "events", "Get a plate read",
			"A plate_read event, by id.", "No such event, or it is not a plate_read.", "Plate read event not found")},
		{method: "POST", path: "/ingest", op: &operation{
			Tags: []string{"ingest"}, Summary: "Append events", OperationID: "ingest_events",
			Description: "Appends one event, a JSON array of events, or NDJSON (`Content-Type: application/x-ndjson`, " +
				"one EventIn object per line). The batch is atomic: any invalid item answers 422 naming every bad " +
				"item by index and field, and nothing is appended. 200 is sent once the batch is durable; its ids " +
				"are contiguous. Limits: " + grouped(vocab.MaxItems) + " items and " + size(vocab.MaxBodyBytes) + " per request.",
			RequestBody: &requestBody{Required: true, Content: ordered[*mediaType]{
				{"application/json", &mediaType{
					Schema: &schema{OneOf: []*schema{
						ref("EventIn"),
						{Type: "array", Items: ref("EventIn"), MaxItems: vocab.MaxItems},
					}},
					Examples: ordered[*example]{
						{"single", &example{Summary: "One event", Value: exampleFaceIn}},
						{"batch", &example{Summary: "A batch", Value: []any{exampleFaceIn, examplePlateIn}}},
					},
				}},
				{"application/x-ndjson", &mediaType{
					Schema:  &schema{Type: "string", Description: "One EventIn JSON object per line."},
					Example: ndjson(exampleFaceIn, examplePlateIn),
				}},
			}},
			Responses: ordered[*response]{
				okJSON("Appended and durable.", ref("IngestResult"), nil),
				unauthorized(),
				errResp("413", "More than "+grouped(vocab.MaxItems)+" items or "+size(vocab.MaxBodyBytes)+".",
					fmt.Sprintf("Request too large: more than %d items in one request", vocab.MaxItems)),
				invalid([]any{"body", 1, "payload", "similarity"}, "Input should be less than or equal to 1", "less_than_equal"),
				tooMany(),
				unavailable("Event store unavailable"),
			},
		}},
		{method: "POST", path: "/cleanup", op: &operation{
			Tags: []string{"admin"}, Summary: "Run retention now", OperationID: "cleanup",
			Description: "Deletes every event whose ts_ms is older than now − RETENTION_DAYS, with its index entries " +
				"and snapshot (also run in the background every CLEANUP_INTERVAL). With RETENTION_DAYS=0 nothing is deleted.",
			Responses: ordered[*response]{
				okJSON("Retention ran.", ref("CleanupResult"), nil),
				unauthorized(),
				tooMany(),
				unavailable("Event store unavailable"),
			},
		}},
		{method: "POST", path: "/backup", op: &operation{
			Tags: []string{"admin"}, Summary: "Back up the store", OperationID: "backup",
			Description: "Writes a consistent point-in-time copy of the store to a new directory in " +
				"SECUREVISION__EVENTS__BACKUP_DIR, then deletes the oldest backups there beyond " +
				"SECUREVISION__EVENTS__BACKUP_KEEP (only directories named like backups). One backup runs at a " +
				"time: a request that arrives while one is running answers 409 at once and is not queued. " +
				"Restoring is serving the backup's directory.",
			Responses: ordered[*response]{
				okJSON("Backup written.", ref("BackupResult"), nil),
				unauthorized(),
				errResp("409", "Another backup is running; try again when it has finished.",
					"A backup is already running: try again when it has finished"),
				tooMany(),
				errResp("503", "The backup could not be written (the server log has the reason).",
					"Backup failed: see the server log"),
			},
		}},
		{method: "GET", path: "/stream", op: &operation{
			Tags: []string{"stream"}, Summary: "Live events (WebSocket)", OperationID: "stream",
			Description: "WebSocket endpoint (`ws://host:port/stream`). The server sends one JSON text message per " +
				"event, in the Event format. A client text message `ping` is answered with " +
				"`{\"type\":\"pong\",\"data\":\"ping\"}`; protocol pings are answered too.\n\n" +
				"Without `after`, events arrive live from the moment of connection. With `after=<id>`, every retained " +
				"event with a larger id is replayed in id order, then the stream continues live with no gap and no " +
				"duplicate. When `after` is below the oldest retained event the first message is " +
				"`{\"type\":\"gap\",\"first_available_id\":N}` and replay starts at N.\n\n" +
				"When WebSockets are disabled the connection is closed with code 1008. With auth on, the token is " +
				"required before the upgrade: `Authorization` header or `?token=`. A browser's upgrade from a page " +
				"whose origin is neither this server nor listed in SECUREVISION__API__CORS_ORIGINS is refused with 403.",
			Parameters: []*parameter{
				query("after", "Replay retained events with id > after, then continue live.", int64Min("", 0)),
				query("type", "Only events of this type.", typeSchema),
				query("source", "Only events from this frame_source_id.", sourceSchema),
				query("token", "Bearer token, for clients (browsers) that cannot set the Authorization header.",
					&schema{Type: "string"}),
			},
			Responses: ordered[*response]{
				{"101", &response{
					Description: "Switching Protocols: the WebSocket is open. The schema below describes the " +
						"messages the server sends on it.",
					Content: ordered[*mediaType]{{"application/json", &mediaType{Schema: streamMessage,
						Examples: ordered[*example]{
							{"event", &example{Summary: "An event", Value: exampleFaceEvent}},
							{"pong", &example{Summary: "Answer to \"ping\"", Value: map[string]any{"type": "pong", "data": "ping"}}},
							{"gap", &example{Summary: "Replay starts later than asked", Value: map[string]any{"type": "gap", "first_available_id": 1001}}},
						}}}},
				}},
				unauthorized(),
			},
		}},
	}
	for _, f := range moreEndpoints {
		eps = append(eps, f()...)
	}
	for _, f := range amendEndpoints {
		f(eps)
	}
	for _, e := range eps {
		// The server's origin and body type check covers every route, so
		// its answers are added here rather than per operation.
		if e.method != "GET" || e.path == "/stream" {
			withResponse(e.op, crossOrigin())
		}
		if e.op.RequestBody != nil {
			withResponse(e.op, unsupportedMediaType())
		}
		if e.public {
			// Non-nil and empty: marshals as [], "no security", overriding
			// the document's default.
			e.op.Security = []map[string][]string{}
		} else {
			e.op.Security = []map[string][]string{{securityName: {}}}
		}
	}
	return eps
}

func ndjson(vs ...any) string {
	var b strings.Builder
	for _, v := range vs {
		line, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}
