package apidocs

// The dashboard (package httpd/ui) and the statistics it draws. The paths
// are written out here rather than imported: apidocs stays below the
// packages whose routes it documents, and httpd's route/spec test checks
// that both agree.

import (
	"strconv"

	"github.com/securevision/events/internal/vocab"
)

func init() {
	moreSchemas = append(moreSchemas, uiSchemas)
	moreEndpoints = append(moreEndpoints, uiEndpoints)
}

func uiSchemas() ordered[*schema] {
	counts := func(desc string) *schema {
		return &schema{Type: "array", Items: &schema{Type: "integer", Minimum: 0},
			MinItems: vocab.StatsHours, MaxItems: vocab.StatsHours, Description: desc}
	}
	source := object("SourceHourly", "One camera's detections per hour, oldest hour first.",
		[]string{"frame_source_id", "counts", "total"},
		prop("frame_source_id", str("The camera (frame_source_id).")),
		prop("counts", counts("Detections in each hour of the window, oldest first.")),
		prop("total", int64s("Sum of counts.")))
	other := object("OtherHourly", "The sources beyond `limit`, summed.",
		[]string{"counts", "total", "sources"},
		prop("counts", counts("Their detections in each hour, oldest first.")),
		prop("total", int64s("Sum of counts.")),
		prop("sources", int64s("How many sources are summed here.")))
	stats := object("HourlyStats", "Detections (face_match and plate_read) per UTC hour and camera, "+
		"by ts_ms, over the last 24 hours, the current hour last.",
		[]string{"hour_ms", "start_ms", "hours", "complete", "sources", "other"},
		prop("hour_ms", int64s("Length of one bucket: 3600000.")),
		prop("start_ms", int64s("Start of the oldest hour (epoch ms); hour i starts at start_ms + i*hour_ms.")),
		prop("hours", int64s("Number of hours: 24.")),
		prop("complete", boolean("False while the counts of events stored before the server started are "+
			"still being read (the counts are then too low); poll again.")),
		prop("sources", arrayOf(ref("SourceHourly"), "Cameras by total, largest first, at most `limit`.")),
		prop("other", &schema{OneOf: []*schema{ref("OtherHourly"), {Type: "null"}},
			Description: "The cameras beyond `limit`, summed; null when there are none."}))
	return ordered[*schema]{{"HourlyStats", stats}, {"SourceHourly", source}, {"OtherHourly", other}}
}

func uiEndpoints() []endpoint {
	html := func(desc string) kv[*response] {
		return kv[*response]{"200", &response{Description: desc,
			Content: ordered[*mediaType]{{"text/html; charset=utf-8", &mediaType{Schema: &schema{Type: "string"}}}}}}
	}
	return []endpoint{
		{method: "GET", path: "/ui", public: true, op: &operation{
			Tags: []string{"dashboard"}, Summary: "Dashboard (redirect)", OperationID: "ui_redirect",
			Description: "Redirects to `/ui/`.",
			Responses: ordered[*response]{{"308", &response{Description: "Permanent redirect to `/ui/`.",
				Headers: ordered[*header]{{"Location", &header{Schema: &schema{Type: "string", Const: "ui/"}}}}}}},
		}},
		{method: "GET", path: "/ui/", public: true, op: &operation{
			Tags: []string{"dashboard"}, Summary: "Operator dashboard", OperationID: "ui_page",
			Description: "The operator's web dashboard: live events with snapshots, search, event detail with " +
				"corrections, plate and person pages, watchlists and a chart of the last 24 hours. The page holds " +
				"no data and is served without the token; with auth on it shows a token form and sends the token " +
				"with every call it makes. Served with a strict Content-Security-Policy: everything from this " +
				"server, no inline script.",
			Responses: ordered[*response]{html("The page.")},
		}},
		{method: "GET", path: "/ui/assets/{name}", public: true, op: &operation{
			Tags: []string{"dashboard"}, Summary: "Dashboard asset", OperationID: "ui_asset",
			Description: "The page's scripts, styles and vendored libraries (`app.js`, `app.css`, " +
				"`preact-htm.module.js`, `uplot.iife.min.js`, `uplot.min.css`, `icon.svg`) and their licences " +
				"(`THIRD_PARTY_LICENSES.txt`). Revalidated by ETag (`Cache-Control: no-cache`), gzip when accepted.",
			Parameters: []*parameter{{Name: "name", In: "path", Required: true, Schema: &schema{Type: "string"},
				Example: "app.js"}},
			Responses: ordered[*response]{
				{"200", &response{Description: "The asset.", Content: ordered[*mediaType]{
					{"text/javascript; charset=utf-8", &mediaType{Schema: &schema{Type: "string"}}},
					{"text/css; charset=utf-8", &mediaType{Schema: &schema{Type: "string"}}},
				}}},
				errResp("404", "No such asset.", "Not Found"),
			},
		}},
		{method: "GET", path: "/stats/hourly", op: &operation{
			Tags: []string{"dashboard"}, Summary: "Detections per hour and camera", OperationID: "stats_hourly",
			Description: "Detections per UTC hour (by `ts_ms`) and per camera over the last 24 hours, the current " +
				"hour included, answered from memory: a projection fed by every commit. Events stored before the " +
				"server started are counted by reading the log once, in the background, on the first request " +
				"(`complete` is false until then). Operator actions (corrections, watchlist changes) are not " +
				"counted. Retention never reaches into the window (it deletes whole days).",
			Parameters: []*parameter{
				query("type", "Only this detection type.", &schema{Type: "string", Enum: typeEnum(vocab.DetectionTypeNames())}),
				query("limit", "Cameras reported one by one; the rest are summed in `other`.",
					&schema{Type: "integer", Default: vocab.StatsDefaultSources, Minimum: 1, Maximum: vocab.StatsMaxSources}),
			},
			Responses: ordered[*response]{
				okJSON("The counts.", ref("HourlyStats"), map[string]any{
					"hour_ms": 3600000, "start_ms": int64(1704067200000), "hours": 24, "complete": true,
					"sources": []any{map[string]any{"frame_source_id": "camera_driveway",
						"counts": []int{0, 0, 0, 0, 0, 0, 3, 8, 12, 5, 4, 6, 9, 7, 5, 4, 8, 11, 6, 2, 1, 0, 0, 1}, "total": 92}},
					"other": nil,
				}),
				unauthorized(),
				invalid([]any{"query", "limit"}, "Input should be less than or equal to "+strconv.Itoa(vocab.StatsMaxSources), "less_than_equal"),
				tooMany(),
				unavailable("Hourly statistics are unavailable: the store could not be read"),
			},
		}},
	}
}
