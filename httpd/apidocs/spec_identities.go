package apidocs

import "github.com/securevision/events/internal/vocab"

// The identities: corrections, watchlists, plate search, histories and
// people.

func init() {
	moreSchemas = append(moreSchemas, identitySchemas)
	moreEndpoints = append(moreEndpoints, identityEndpoints)
}

func identitySchemas() ordered[*schema] {
	correctionIn := object("CorrectionIn", "Exactly one of person_name (a face_match), plate_text (a plate_read) "+
		"and false_positive (either), and an optional note. Unknown members are refused.", nil,
		prop("person_name", &schema{Type: "string", MinLength: 1, MaxLength: vocab.MaxPersonNameLen, Description: "Who the face really is."}),
		prop("plate_text", &schema{Type: "string", MinLength: 1, MaxLength: vocab.MaxPlateTextLen, Description: "What the plate really reads."}),
		prop("false_positive", &schema{Type: "boolean", Const: true, Description: "Not a face or not a plate at all."}),
		prop("note", &schema{Type: "string", MaxLength: vocab.MaxNoteLen, Description: "Why (free text)."}))
	correction := object("Correction", "The newest correction of a detection, as reads of it carry it.",
		[]string{"id", "created_at", "event_id"},
		prop("id", int64s("The correction event's id.")),
		prop("created_at", str("When the correction was made.")),
		prop("event_id", int64s("The corrected detection.")),
		prop("person_name", str("")), prop("plate_text", str("")),
		prop("false_positive", boolean("")), prop("note", str("")))
	agg := func(title, desc string, first ...kv[*schema]) *schema {
		props := append(first,
			prop("count", int64s("Retained detections.")),
			prop("first_seen_ms", int64s("Smallest ts_ms.")),
			prop("last_seen_ms", int64s("Largest ts_ms.")),
			prop("cameras", arrayOf(str(""), "The cameras that saw it, sorted.")))
		return object(title, desc, nil, props...)
	}
	plateHit := agg("PlateHit", "A plate found by GET /search/plates.",
		prop("plate_text", str("Normalised plate text: upper case, letters and digits.")),
		prop("distance", num("Weighted edit distance from the query (a multiple of 0.5).")))
	plateHit.Properties = append(plateHit.Properties, prop("list_match", &schema{
		Type: []any{"string", "null"}, Enum: []any{vocab.Whitelist, vocab.Blacklist, nil},
		Description: "The plate's watchlist verdict now."}))
	person := agg("Person", "A person with retained face matches (by corrected name; unknown included).",
		prop("name", str("")))
	item := object("WatchlistItem", "A plate on a watchlist.", []string{"plate", "note", "source"},
		prop("plate", str("Normalised plate (for file entries: the matching key).")),
		prop("note", str("")),
		prop("source", &schema{Type: "string", Enum: []any{"api", "file"}}),
		prop("updated_at", str("When the API last changed it.")),
		prop("event_id", int64s("The watchlist_change event.")))
	lists := object("Watchlists", "Both lists as matching applies them.", []string{vocab.Whitelist, vocab.Blacklist},
		prop(vocab.Whitelist, arrayOf(ref("WatchlistItem"), "")),
		prop(vocab.Blacklist, arrayOf(ref("WatchlistItem"), "")))
	return ordered[*schema]{
		{"CorrectionIn", correctionIn}, {"Correction", correction}, {"PlateHit", plateHit},
		{"Person", person}, {"WatchlistItem", item}, {"Watchlists", lists},
	}
}

func identityEndpoints() []endpoint {
	paging := func() []*parameter {
		limit := &schema{Type: "integer", Default: vocab.DefaultQueryLimit, Minimum: 1, Maximum: vocab.MaxQueryLimit}
		return []*parameter{
			query("since", "Only detections with ts_ms > since.", int64s("")),
			query("until", "Only detections with ts_ms ≤ until.", int64s("")),
			query("limit", "Maximum number of events to return.", limit),
			query("before", "Cursor: ids < before.", int64s("")),
			query("after", "Cursor: ids > after; implies order=asc.", int64s("")),
			query("order", "asc or desc.", &schema{Type: "string", Enum: []any{"asc", "desc"}}),
		}
	}
	eventsOK := okJSON("The page, as GET /events pages (X-Next-Cursor, Link rel=next).", arrayOf(ref("Event"), ""), nil)
	listParam := &parameter{Name: "list", In: "path", Required: true, Schema: &schema{Type: "string", Enum: []any{vocab.Whitelist, vocab.Blacklist}}}
	plateParam := &parameter{Name: "plate", In: "path", Required: true, Description: "The plate; normalised (upper case, letters and digits).",
		Schema: &schema{Type: "string", MaxLength: vocab.MaxPlateTextLen}}
	watchChange := okJSON("The watchlist_change event.", ref("Event"), nil)
	return []endpoint{
		{method: "POST", path: "/events/{event_id}/corrections", op: &operation{
			Tags: []string{"identities"}, Summary: "Correct a detection", OperationID: "correct_event",
			Description: "Appends a `correction` event. The detection itself is never rewritten: reads of it " +
				"(GET /events, /events/{id}, /faces/{id}, /plates/{id}, /stream replay) carry a `correction` member " +
				"with the newest correction. Plate search, histories, people and watchlist matching use the corrected value. " +
				"A correction has its detection's ts_ms and frame_source_id, so it expires with it.",
			Parameters:  []*parameter{eventIDParam()},
			RequestBody: &requestBody{Required: true, Content: jsonContent(ref("CorrectionIn"), map[string]any{"person_name": "Jane Roe", "note": "matched wrong"})},
			Responses: ordered[*response]{
				{"201", &response{Description: "The correction event.", Content: jsonContent(ref("Event"), nil)}},
				unauthorized(),
				errResp("404", "No such detection.", "Event not found"),
				invalid([]any{"body", "person_name"}, "Value error, person_name corrects a face_match; this event is a plate_read", "value_error"),
				tooMany(), unavailable("Event store unavailable"),
			},
		}},
		{method: "GET", path: "/search/plates", op: &operation{
			Tags: []string{"identities"}, Summary: "Fuzzy plate search", OperationID: "search_plates",
			Description: "Plates seen (retained reads, by corrected text) within a weighted edit distance of q: an insertion, " +
				"deletion or substitution costs 1, the OCR confusions O/0, I/1, B/8, S/5, Z/2 cost 0.5. `*` matches any run of " +
				"characters, `?` exactly one. Nearest first, then by plate. Served from an index of the distinct plates.",
			Parameters: []*parameter{
				{Name: "q", In: "query", Required: true, Description: "Plate pattern, e.g. ABC1Z34 or AB*.", Schema: &schema{Type: "string"}},
				query("max_distance", "Largest distance, a multiple of 0.5.", &schema{Type: "number", Default: 1, Minimum: 0, Maximum: 4}),
				query("limit", "Most hits.", &schema{Type: "integer", Default: 50, Minimum: 1, Maximum: 500}),
			},
			Responses: ordered[*response]{
				okJSON("The hits.", arrayOf(ref("PlateHit"), ""), nil), unauthorized(),
				invalid([]any{"query", "q"}, "Field required", "missing"), tooMany(),
			},
		}},
		{method: "GET", path: "/history/plates/{text}", op: &operation{
			Tags: []string{"identities"}, Summary: "Every read of a plate", OperationID: "plate_history",
			Description: "The plate_read events of one plate (normalised; by corrected text), paged like GET /events.",
			Parameters:  append([]*parameter{{Name: "text", In: "path", Required: true, Schema: &schema{Type: "string"}}}, paging()...),
			Responses:   ordered[*response]{eventsOK, unauthorized(), invalid([]any{"path", "text"}, "Value error, not a plate text", "value_error"), tooMany()},
		}},
		{method: "GET", path: "/history/people/{name}", op: &operation{
			Tags: []string{"identities"}, Summary: "Every face match of a person", OperationID: "person_history",
			Description: "The face_match events of one person (by corrected name; `unknown` included), paged like GET /events.",
			Parameters:  append([]*parameter{{Name: "name", In: "path", Required: true, Schema: &schema{Type: "string"}}}, paging()...),
			Responses:   ordered[*response]{eventsOK, unauthorized(), invalid([]any{"path", "name"}, "Value error, not a person name", "value_error"), tooMany()},
		}},
		{method: "GET", path: "/people", op: &operation{
			Tags: []string{"identities"}, Summary: "People seen", OperationID: "people",
			Description: "Every person with retained face matches, by name, `unknown` included.",
			Responses:   ordered[*response]{okJSON("The people.", arrayOf(ref("Person"), ""), nil), unauthorized(), tooMany()},
		}},
		{method: "DELETE", path: "/people/{name}", op: &operation{
			Tags: []string{"identities"}, Summary: "Erase a person", OperationID: "erase_person",
			Description: "Erasure on request (GDPR Art. 17, BIPA): deletes every face_match recognised as or corrected to " +
				"the name, with its snapshot, its corrections and every index entry, and the person's gallery events and " +
				"images; then rewrites the store so that the name is in none of its files (tables, WAL) and appends an " +
				"`erasure` event holding only a salted hash. Backups taken before still hold the data.",
			Parameters: []*parameter{{Name: "name", In: "path", Required: true, Schema: &schema{Type: "string"}}},
			Responses: ordered[*response]{
				okJSON("The erasure event; payload.erased counts the deleted detections.", ref("Event"), nil),
				unauthorized(), invalid([]any{"path", "name"}, "Value error, not a person name", "value_error"),
				tooMany(), errResp("503", "The erasure failed part-way; repeat it.", "Erasure failed: see the server log; the request may be repeated"),
			},
		}},
		{method: "DELETE", path: "/history/plates/{text}", op: &operation{
			Tags: []string{"identities"}, Summary: "Erase a plate", OperationID: "erase_plate",
			Description: "As DELETE /people/{name}, for every plate_read of the normalised plate (read as it or corrected to it), " +
				"its corrections and the plate's watchlist changes.",
			Parameters: []*parameter{{Name: "text", In: "path", Required: true, Schema: &schema{Type: "string"}}},
			Responses: ordered[*response]{
				okJSON("The erasure event.", ref("Event"), nil),
				unauthorized(), invalid([]any{"path", "text"}, "Value error, not a plate text", "value_error"),
				tooMany(), errResp("503", "The erasure failed part-way; repeat it.", "Erasure failed: see the server log; the request may be repeated"),
			},
		}},
		{method: "GET", path: "/watchlists", op: &operation{
			Tags: []string{"identities"}, Summary: "The watchlists", OperationID: "watchlists",
			Description: "Both lists as matching applies them: the API's entries, then the watchlist files' keys the API has not changed.",
			Responses:   ordered[*response]{okJSON("The lists.", ref("Watchlists"), nil), unauthorized(), tooMany()},
		}},
		{method: "PUT", path: "/watchlists/{list}/{plate}", op: &operation{
			Tags: []string{"identities"}, Summary: "Put a plate on a watchlist", OperationID: "watchlist_put",
			Description: "Appends a `watchlist_change` event. Matching (vision reads and POST /ingest reads without list_match) " +
				"applies it from the answer on, with the OCR-confusion tolerance of the files. For a plate it names, the API " +
				"wins over the watchlist files until the API changes it again.",
			Parameters:  []*parameter{listParam, plateParam},
			RequestBody: &requestBody{Content: jsonContent(object("WatchlistNote", "", nil, prop("note", &schema{Type: "string", MaxLength: vocab.MaxNoteLen})), map[string]any{"note": "stolen"})},
			Responses:   ordered[*response]{watchChange, unauthorized(), errResp("404", "No such list.", "No such watchlist: use whitelist or blacklist"), tooMany(), unavailable("Event store unavailable")},
		}},
		{method: "DELETE", path: "/watchlists/{list}/{plate}", op: &operation{
			Tags: []string{"identities"}, Summary: "Take a plate off a watchlist", OperationID: "watchlist_delete",
			Description: "Appends a `watchlist_change` event removing it; a plate from the files stays removed while the files list it.",
			Parameters:  []*parameter{listParam, plateParam},
			Responses:   ordered[*response]{watchChange, unauthorized(), errResp("404", "Not on that list.", "Plate not on the blacklist"), tooMany(), unavailable("Event store unavailable")},
		}},
	}
}
