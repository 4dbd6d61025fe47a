package apidocs

import "github.com/securevision/events/internal/vocab"

// The webhooks API (package internal/webhook serves it). Its limits are
// stated in the schema descriptions and docs/api.md, and checked against
// the package's constants by its own test.

func init() {
	moreSchemas = append(moreSchemas, webhookSchemas)
	moreEndpoints = append(moreEndpoints, webhookEndpoints)
}

const webhookTag = "webhooks"

var exampleWebhook = map[string]any{
	"id": "wh_5f1c0a9e2b7d4c31", "url": "https://integrator.example/hooks/securevision",
	"types": []any{vocab.PlateRead}, "sources": []any{"camera_driveway"}, "list_match": vocab.Blacklist,
	"description": "Blacklisted plates to the gate controller", "state": "active",
	"cursor": 124, "lag": 0, "failures": 0, "last_error": nil, "last_error_at": nil,
	"last_success_at": "2024-01-01T00:00:05.012Z", "next_retry_at": nil, "skipped": 0,
	"created_at": "2024-01-01T00:00:00.000Z",
}

func webhookWithSecret() map[string]any {
	m := map[string]any{}
	for k, v := range exampleWebhook {
		m[k] = v
	}
	m["secret"] = "whsec_o8FXuHcICwTZTcUojU+IzZVOTvz5h7ZSAuqM+eOqYJc="
	return m
}

func webhookSchemas() ordered[*schema] {
	nullable := func(typ, desc string) *schema {
		return &schema{Type: []string{typ, "null"}, Description: desc}
	}
	timeOrNull := func(desc string) *schema {
		s := nullable("string", desc)
		s.Format = "date-time"
		return s
	}
	typesIn := arrayOf(&schema{Type: "string", Enum: typeEnum(vocab.TypeNames())},
		"Event types to deliver. Omitted, null or empty: every detection type (face_match, plate_read), "+
			"not the operators' own events (corrections, watchlist changes).")
	typesIn.Type = []string{"array", "null"}
	sourcesIn := arrayOf(&schema{Type: "string"},
		"frame_source_id values to deliver (each 1 to the source limit of events in characters). Omitted, null or empty: every source.")
	sourcesIn.Type = []string{"array", "null"}
	listMatch := &schema{
		Type: []string{"string", "null"}, Enum: []any{vocab.Whitelist, vocab.Blacklist, nil},
		Description: "Deliver only plate reads with this list_match (so only plate_read events). null: no such filter.",
	}
	in := object("WebhookIn", "A new webhook. Unknown members are refused (422 extra_forbidden).", []string{"url"},
		prop("url", &schema{Type: "string", Format: "uri", Description: "Receiver URL: http or https, no user information, " +
			"at most the URL limit in bytes (docs/api.md). Link-local and cloud metadata addresses are refused, " +
			"loopback unless SECUREVISION__WEBHOOKS__ALLOW_LOOPBACK=true."}),
		prop("types", typesIn),
		prop("sources", sourcesIn),
		prop("list_match", listMatch),
		prop("person_name", &schema{Type: []string{"string", "null"}, MinLength: 1, MaxLength: vocab.MaxPersonNameLen,
			Description: "Deliver only face matches of this person as recognised (\"unknown\": the faces nobody was recognised as). null: no such filter."}),
		prop("description", nullable("string", "Free text for operators.")),
		prop("after", &schema{Type: []string{"integer", "null"}, Minimum: 0,
			Description: "Start after this event id (at most the last id). Omitted: after the newest event at creation."}),
	)
	in.AdditionalProperties = false
	in.Examples = []any{map[string]any{
		"url": "https://integrator.example/hooks/securevision", "types": []any{vocab.PlateRead},
		"sources": []any{"camera_driveway"}, "list_match": vocab.Blacklist, "description": "Blacklisted plates to the gate controller",
	}}

	wh := object("Webhook", "A webhook and its delivery state.",
		[]string{"id", "url", "types", "sources", "list_match", "person_name", "description", "state", "cursor", "lag", "failures",
			"last_error", "last_error_at", "last_success_at", "next_retry_at", "skipped", "created_at"},
		prop("id", str("Webhook id: wh_ and 16 hex digits.")),
		prop("url", str("Receiver URL.")),
		prop("types", &schema{Type: []string{"array", "null"}, Items: &schema{Type: "string"},
			Description: "Types filter as given; null: every detection type."}),
		prop("sources", &schema{Type: []string{"array", "null"}, Items: &schema{Type: "string"},
			Description: "Sources filter as given; null: every source."}),
		prop("list_match", &schema{Type: []string{"string", "null"}, Enum: []any{vocab.Whitelist, vocab.Blacklist, nil},
			Description: "list_match filter; null: none."}),
		prop("person_name", nullable("string", "person_name filter; null: none.")),
		prop("description", str("Free text (empty when none was given).")),
		prop("secret", str("Signing secret, whsec_ and the base64 of 32 random bytes. Only in the answers to "+
			"POST /webhooks and POST /webhooks/{webhook_id}/rotate-secret: store it then.")),
		prop("state", &schema{Type: "string", Enum: []any{"active", "disabled"},
			Description: "disabled after the receiver answered 410 Gone; POST …/enable makes it active."}),
		prop("cursor", int64s("Id of the newest event dealt with (delivered, or skipped by the filters); deliveries resume after it.")),
		prop("lag", int64s("The log's last id minus cursor.")),
		prop("failures", &schema{Type: "integer", Minimum: 0, Description: "Failed attempts since the last successful delivery."}),
		prop("last_error", nullable("string", "The last failure (HTTP status, timeout, connection error or refused address); kept after recovery.")),
		prop("last_error_at", timeOrNull("When last_error happened.")),
		prop("last_success_at", timeOrNull("When the receiver last answered 2xx.")),
		prop("next_retry_at", timeOrNull("When the failing delivery is retried; null when not retrying.")),
		prop("skipped", int64s("Event ids retention deleted before this webhook reached them.")),
		prop("created_at", &schema{Type: "string", Format: "date-time", Description: "Creation time."}),
	)
	wh.Examples = []any{exampleWebhook}

	replay := object("WebhookReplay", "Where deliveries resume.", []string{"after"},
		prop("after", &schema{Type: "integer", Minimum: 0,
			Description: "Deliver again every matching event with a larger id (at most the last id; below the oldest retained event means from the oldest)."}))
	replay.AdditionalProperties = false

	return ordered[*schema]{
		{"WebhookIn", in},
		{"Webhook", wh},
		{"WebhookReplay", replay},
	}
}

func webhookIDParam() *parameter {
	return &parameter{Name: "webhook_id", In: "path", Required: true, Description: "Webhook id.",
		Schema: &schema{Type: "string", Title: "Webhook Id"}, Example: "wh_5f1c0a9e2b7d4c31"}
}

func webhookEndpoints() []endpoint {
	notFound := func() kv[*response] { return errResp("404", "No such webhook.", "Webhook not found") }
	storeDown := func() kv[*response] {
		return errResp("503", "The store cannot be written.", "Event store unavailable")
	}
	one := func(desc string) kv[*response] { return okJSON(desc, ref("Webhook"), exampleWebhook) }
	withSecret := func(code, desc string) kv[*response] {
		return kv[*response]{code, &response{Description: desc, Content: jsonContent(ref("Webhook"), webhookWithSecret())}}
	}
	tooLarge := errResp("413", "The body is larger than the webhooks API's limit.",
		"Request too large: the body may have at most 65536 bytes")
	return []endpoint{
		{method: "POST", path: "/webhooks", op: &operation{
			Tags: []string{webhookTag}, Summary: "Create a webhook", OperationID: "create_webhook",
			Description: "Every later event that matches the filters is POSTed to `url`, signed (Standard Webhooks), " +
				"in id order, at least once. The answer carries the signing `secret`: it is shown only here and by " +
				"rotate-secret.\n\n" +
				"**Deliveries.** One `POST` per event, body `{\"type\": <event type>, \"timestamp\": <created_at>, " +
				"\"data\": <the event exactly as GET /events/{event_id} answers it>}`, headers `webhook-id: evt_<event id>` " +
				"(the same on every retry), `webhook-timestamp: <Unix seconds of this attempt>` and " +
				"`webhook-signature: v1,<base64 HMAC-SHA256 of \"<webhook-id>.<webhook-timestamp>.<body>\" keyed with the " +
				"base64-decoded secret after whsec_>`. A 2xx answer moves the cursor; 410 disables the webhook; anything " +
				"else, or no answer within the timeout, is retried with exponential back-off and jitter (honouring " +
				"`Retry-After`) while later events wait. See docs/api.md, Webhooks, for the full rules.",
			RequestBody: &requestBody{Required: true, Content: jsonContent(ref("WebhookIn"), nil)},
			Responses: ordered[*response]{
				withSecret("201", "Created and delivering."),
				unauthorized(),
				errResp("409", "The server has as many webhooks as it allows.", "Too many webhooks: at most 1000; delete one first"),
				tooLarge,
				invalid([]any{"body", "url"}, "Value error, webhook: destination refused: 169.254.169.254 is link-local (cloud metadata lives there)", "value_error"),
				tooMany(),
				storeDown(),
			},
		}},
		{method: "GET", path: "/webhooks", op: &operation{
			Tags: []string{webhookTag}, Summary: "List webhooks", OperationID: "list_webhooks",
			Description: "Every webhook with its delivery state, oldest first. Secrets are never listed.",
			Responses: ordered[*response]{
				okJSON("The webhooks.", arrayOf(ref("Webhook"), ""), []any{exampleWebhook}),
				unauthorized(),
				tooMany(),
			},
		}},
		{method: "GET", path: "/webhooks/{webhook_id}", op: &operation{
			Tags: []string{webhookTag}, Summary: "Get a webhook", OperationID: "get_webhook",
			Description: "One webhook with its delivery state: cursor, lag, state, failures, last_error, last_success_at. No secret.",
			Parameters:  []*parameter{webhookIDParam()},
			Responses:   ordered[*response]{one("The webhook."), unauthorized(), notFound(), tooMany()},
		}},
		{method: "DELETE", path: "/webhooks/{webhook_id}", op: &operation{
			Tags: []string{webhookTag}, Summary: "Delete a webhook", OperationID: "delete_webhook",
			Description: "Stops its deliveries (an attempt in flight is cancelled) and deletes it.",
			Parameters:  []*parameter{webhookIDParam()},
			Responses: ordered[*response]{
				{"204", &response{Description: "Deleted."}},
				unauthorized(), notFound(), tooMany(), storeDown(),
			},
		}},
		{method: "POST", path: "/webhooks/{webhook_id}/replay", op: &operation{
			Tags: []string{webhookTag}, Summary: "Replay from an event id", OperationID: "replay_webhook",
			Description: "Moves the cursor to `after`: every matching event with a larger id is delivered (again). " +
				"A delivery being retried is abandoned; failures and back-off are reset.",
			Parameters:  []*parameter{webhookIDParam()},
			RequestBody: &requestBody{Required: true, Content: jsonContent(ref("WebhookReplay"), map[string]any{"after": 100})},
			Responses: ordered[*response]{
				one("The webhook, with its new cursor."),
				unauthorized(), notFound(), tooLarge,
				invalid([]any{"body", "after"}, "Input should be less than or equal to 124 (the last event id)", "less_than_equal"),
				tooMany(), storeDown(),
			},
		}},
		{method: "POST", path: "/webhooks/{webhook_id}/rotate-secret", op: &operation{
			Tags: []string{webhookTag}, Summary: "Rotate the signing secret", OperationID: "rotate_webhook_secret",
			Description: "A new secret signs every attempt from now on (retries included); the old one stops at once. No body.",
			Parameters:  []*parameter{webhookIDParam()},
			Responses: ordered[*response]{
				withSecret("200", "The webhook with its new secret (shown only here)."),
				unauthorized(), notFound(), tooMany(), storeDown(),
			},
		}},
		{method: "POST", path: "/webhooks/{webhook_id}/enable", op: &operation{
			Tags: []string{webhookTag}, Summary: "Enable a webhook", OperationID: "enable_webhook",
			Description: "Makes a disabled webhook (410 Gone) active again; failures and back-off are reset and a failing " +
				"delivery is retried at once. Deliveries resume at the cursor. No body.",
			Parameters: []*parameter{webhookIDParam()},
			Responses: ordered[*response]{
				one("The webhook, active."),
				unauthorized(), notFound(), tooMany(), storeDown(),
			},
		}},
	}
}
