package httpd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
	"github.com/securevision/events/projections/platesearch"
)

// Operators' actions: corrections and watchlist changes are appended to
// the log as events (ingest.Action); the projections make them current
// state. A handler answers after its event is durable and applied.

// maxActionBody bounds the JSON body of an operator's action: a few
// short strings.
const maxActionBody = 16 << 10

// WatchlistFiles is what GET /watchlists shows of the watchlist files:
// the matching keys each puts on a list. *watchlist.Watchlist implements
// it.
type WatchlistFiles interface {
	FileKeys(list string) []string
}

// decodeAction reads a small JSON object body into v, refusing unknown
// members, trailing data and bodies over maxActionBody, each with a 422
// in FastAPI's shape. An empty body decodes as {} when emptyOK.
func decodeAction(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBody+1))
	if err != nil {
		httpx.WriteDetail(w, http.StatusBadRequest, "Could not read the request body")
		return false
	}
	if len(body) > maxActionBody {
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: the limit is %d bytes", maxActionBody))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 && emptyOK {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	fail := func(typ, msg string) bool {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body"}, Msg: msg, Type: typ}})
		return false
	}
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body", ute.Field}, Msg: "Input has the wrong type: expected " + ute.Type.String(), Type: "type_error"}})
			return false
		case bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field")):
			return fail("extra_forbidden", "Extra inputs are not permitted: "+err.Error()[len("json: "):])
		}
		return fail("json_invalid", "JSON decode error: "+err.Error())
	}
	if dec.More() {
		return fail("json_invalid", "JSON decode error: data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("json_invalid", "JSON decode error: data after the object")
	}
	return true
}

// checkText records an error unless s (when set) holds 1 to max
// characters and, when notBlank, not only white space.
func checkText(errs []vocab.FieldError, field string, s *string, max int) []vocab.FieldError {
	if s == nil {
		return errs
	}
	n := utf8.RuneCountInString(*s)
	switch {
	case n == 0 || len(bytes.TrimSpace([]byte(*s))) == 0:
		return append(errs, vocab.FieldError{Loc: []any{"body", field}, Msg: "String should have at least 1 character", Type: "string_too_short"})
	case n > max:
		return append(errs, vocab.FieldError{Loc: []any{"body", field}, Msg: fmt.Sprintf("String should have at most %d characters", max), Type: "string_too_long"})
	}
	return errs
}

// CorrectionRequest is the body of POST /events/{id}/corrections: exactly
// one of PersonName (a face_match), PlateText (a plate_read) and
// FalsePositive (either), and an optional Note.
type CorrectionRequest struct {
	PersonName    *string `json:"person_name"`
	PlateText     *string `json:"plate_text"`
	FalsePositive *bool   `json:"false_positive"`
	Note          *string `json:"note"`
}

// Validate checks the request against the corrected event's type code.
func (c *CorrectionRequest) Validate(typ uint8) []vocab.FieldError {
	var errs []vocab.FieldError
	n := 0
	for _, set := range []bool{c.PersonName != nil, c.PlateText != nil, c.FalsePositive != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return []vocab.FieldError{{Loc: []any{"body"}, Type: "value_error",
			Msg: "Value error, give exactly one of person_name, plate_text and false_positive"}}
	}
	errs = checkText(errs, "person_name", c.PersonName, vocab.MaxPersonNameLen)
	errs = checkText(errs, "plate_text", c.PlateText, vocab.MaxPlateTextLen)
	errs = checkText(errs, "note", c.Note, vocab.MaxNoteLen)
	switch {
	case c.FalsePositive != nil && !*c.FalsePositive:
		errs = append(errs, vocab.FieldError{Loc: []any{"body", "false_positive"}, Type: "literal_error",
			Msg: "Input should be true"})
	case c.PersonName != nil && typ != vocab.FaceMatchCode:
		errs = append(errs, vocab.FieldError{Loc: []any{"body", "person_name"}, Type: "value_error",
			Msg: "Value error, person_name corrects a face_match; this event is a " + vocab.TypeName(typ)})
	case c.PlateText != nil && typ != vocab.PlateReadCode:
		errs = append(errs, vocab.FieldError{Loc: []any{"body", "plate_text"}, Type: "value_error",
			Msg: "Value error, plate_text corrects a plate_read; this event is a " + vocab.TypeName(typ)})
	case c.PlateText != nil && vocab.NormalizePlate(*c.PlateText) == "":
		errs = append(errs, vocab.FieldError{Loc: []any{"body", "plate_text"}, Type: "value_error",
			Msg: "Value error, plate_text has no letter or digit"})
	}
	return errs
}

func (s *Server) correct(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, httprouter.ParamsFromContext(r.Context()))
	if !ok {
		return
	}
	var req CorrectionRequest
	if !decodeAction(w, r, &req, false) {
		return
	}
	typ, js, err := s.opts.View.Event(id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound) || err == nil && !vocab.IsDetection(typ):
		httpx.WriteDetail(w, http.StatusNotFound, "Event not found")
		return
	case err != nil:
		s.logger.Error("read event failed", "id", id, "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable")
		return
	}
	if errs := req.Validate(typ); len(errs) > 0 {
		httpx.WriteValidation(w, errs)
		return
	}
	var ev struct {
		TsMs   int64  `json:"ts_ms"`
		Source string `json:"frame_source_id"`
	}
	if err := json.Unmarshal(js, &ev); err != nil {
		s.logger.Error("stored event is not JSON", "id", id, "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
		return
	}
	payload, _ := json.Marshal(struct {
		EventID       uint64  `json:"event_id"`
		PersonName    *string `json:"person_name,omitempty"`
		PlateText     *string `json:"plate_text,omitempty"`
		FalsePositive bool    `json:"false_positive,omitempty"`
		Note          *string `json:"note,omitempty"`
	}{id, req.PersonName, req.PlateText, req.FalsePositive != nil, req.Note})
	s.appendAction(w, r.Context(), ingest.Action{
		Type: vocab.CorrectionCode, TsMs: ev.TsMs, Source: ev.Source, Payload: payload,
	}, http.StatusCreated)
}

// appendAction appends a and answers status with the stored event.
func (s *Server) appendAction(w http.ResponseWriter, ctx context.Context, a ingest.Action, status int) {
	aid, err := s.opts.Ingest.AppendAction(ctx, a)
	if err != nil {
		s.logger.Error("append action failed", "type", vocab.TypeName(a.Type), "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable")
		return
	}
	_, js, err := s.opts.View.Event(aid)
	if err != nil {
		s.logger.Error("read action failed", "id", aid, "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable")
		return
	}
	httpx.WriteRaw(w, status, js)
}

// watchListParam reads :list, answering 404 for anything but the two
// lists.
func watchListParam(w http.ResponseWriter, ps httprouter.Params) (string, bool) {
	switch l := ps.ByName("list"); l {
	case vocab.Whitelist, vocab.Blacklist:
		return l, true
	}
	httpx.WriteDetail(w, http.StatusNotFound, "No such watchlist: use whitelist or blacklist")
	return "", false
}

// watchPlateParam reads :plate, normalised, answering 422 when it has no
// letter or digit or is too long.
func watchPlateParam(w http.ResponseWriter, ps httprouter.Params) (string, bool) {
	raw := ps.ByName("plate")
	p := vocab.NormalizePlate(raw)
	switch {
	case p == "":
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "plate"}, Type: "value_error", Msg: "Value error, the plate has no letter or digit"}})
		return "", false
	case utf8.RuneCountInString(raw) > vocab.MaxPlateTextLen:
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "plate"}, Type: "string_too_long",
			Msg: fmt.Sprintf("String should have at most %d characters", vocab.MaxPlateTextLen)}})
		return "", false
	}
	return p, true
}

// WatchlistItem is one plate of GET /watchlists.
type WatchlistItem struct {
	Plate string `json:"plate"`
	Note  string `json:"note"`
	// Source is "api" (PUT /watchlists) or "file" (the watchlist files,
	// which hold matching keys: the plate is shown as its key).
	Source    string `json:"source"`
	UpdatedAt string `json:"updated_at,omitempty"`
	EventID   uint64 `json:"event_id,omitempty"`
}

// watchlistItems is a list as matching sees it: the API's entries, then
// the files' keys the API has not overridden.
func (s *Server) watchlistItems(list string) []WatchlistItem {
	out := []WatchlistItem{}
	for _, e := range s.opts.View.WatchEntries(list) {
		out = append(out, WatchlistItem{Plate: e.Plate, Note: e.Note, Source: "api", UpdatedAt: e.CreatedAt, EventID: e.ID})
	}
	if s.opts.WatchlistFiles != nil {
		for _, k := range s.opts.WatchlistFiles.FileKeys(list) {
			if _, ok := s.opts.View.WatchOverride(list, k); !ok {
				out = append(out, WatchlistItem{Plate: k, Source: "file"})
			}
		}
	}
	return out
}

func (s *Server) watchlists(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string][]WatchlistItem{
		vocab.Whitelist: s.watchlistItems(vocab.Whitelist),
		vocab.Blacklist: s.watchlistItems(vocab.Blacklist),
	})
}

func (s *Server) watchPut(w http.ResponseWriter, r *http.Request) {
	ps := httprouter.ParamsFromContext(r.Context())
	list, ok := watchListParam(w, ps)
	if !ok {
		return
	}
	plate, ok := watchPlateParam(w, ps)
	if !ok {
		return
	}
	var req struct {
		Note *string `json:"note"`
	}
	if !decodeAction(w, r, &req, true) {
		return
	}
	note := ""
	if req.Note != nil {
		if utf8.RuneCountInString(*req.Note) > vocab.MaxNoteLen {
			httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body", "note"}, Type: "string_too_long",
				Msg: fmt.Sprintf("String should have at most %d characters", vocab.MaxNoteLen)}})
			return
		}
		note = *req.Note
	}
	payload, _ := json.Marshal(projections.WatchChange{Op: "add", List: list, Plate: plate, Note: note})
	s.appendAction(w, r.Context(), ingest.Action{
		Type: vocab.WatchlistChangeCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource, Payload: payload,
	}, http.StatusOK)
}

func (s *Server) watchDelete(w http.ResponseWriter, r *http.Request) {
	ps := httprouter.ParamsFromContext(r.Context())
	list, ok := watchListParam(w, ps)
	if !ok {
		return
	}
	plate, ok := watchPlateParam(w, ps)
	if !ok {
		return
	}
	key := vocab.PlateKey(plate)
	on, decided := s.opts.View.WatchOverride(list, key)
	if !decided && s.opts.WatchlistFiles != nil {
		for _, k := range s.opts.WatchlistFiles.FileKeys(list) {
			on = on || k == key
		}
	}
	if !on {
		httpx.WriteDetail(w, http.StatusNotFound, "Plate not on the "+list)
		return
	}
	payload, _ := json.Marshal(projections.WatchChange{Op: "remove", List: list, Plate: plate})
	s.appendAction(w, r.Context(), ingest.Action{
		Type: vocab.WatchlistChangeCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource, Payload: payload,
	}, http.StatusOK)
}

// Plate search parameters.
const (
	// DefaultPlateDistance is max_distance without one: one OCR error.
	DefaultPlateDistance = 1.0
	// MaxPlateDistance bounds max_distance: beyond it nearly every plate
	// matches a short query.
	MaxPlateDistance = 4.0
	// DefaultPlateHits and MaxPlateHits bound limit.
	DefaultPlateHits = 50
	MaxPlateHits     = 500
)

func (s *Server) searchPlates(w http.ResponseWriter, r *http.Request) {
	p := httpx.Query{Values: r.URL.Query()}
	q, ok := p.Get("q")
	if !ok {
		p.Fail("q", "missing", "Field required")
	}
	maxDist := DefaultPlateDistance
	if v, ok := p.Get("max_distance"); ok {
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || math.IsNaN(f):
			p.Fail("max_distance", "float_parsing", "Input should be a valid number, unable to parse string as a number")
		case f < 0 || f > MaxPlateDistance:
			p.Fail("max_distance", "value_error", fmt.Sprintf("Value error, max_distance is from 0 to %g, in steps of 0.5", MaxPlateDistance))
		default:
			maxDist = f
		}
	}
	limit := DefaultPlateHits
	if v, ok := p.Get("limit"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			p.Fail("limit", "int_parsing", "Input should be a valid integer, unable to parse string as an integer")
		case n < 1 || n > MaxPlateHits:
			p.Fail("limit", "value_error", fmt.Sprintf("Value error, limit is from 1 to %d", MaxPlateHits))
		default:
			limit = n
		}
	}
	if len(p.Errs) > 0 {
		httpx.WriteValidation(w, p.Errs)
		return
	}
	var match func(string) string
	if s.opts.Lists != nil {
		match = s.opts.Lists.Match
	}
	hits, err := s.opts.View.SearchPlates(q, maxDist, limit, match)
	switch {
	case errors.Is(err, platesearch.ErrQueryTooLong), errors.Is(err, platesearch.ErrEmptyQuery), errors.Is(err, platesearch.ErrMaxDistance):
		httpx.WriteValidation(w, []vocab.FieldError{vocab.QueryError("q", "value_error", "Value error, "+err.Error())})
	case err != nil:
		s.logger.Error("plate search failed", "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
	default:
		httpx.WriteJSON(w, http.StatusOK, hits)
	}
}

// history pages the detections of one plate (by its normalised text) or
// one person, as GET /events pages (cursors, order, since, until, limit).
func (s *Server) history(person bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		eq, errs := ParseEventsQuery(v)
		for _, p := range []string{"source", "type"} {
			if v.Has(p) {
				errs = append(errs, vocab.QueryError(p, "extra_forbidden", "Extra inputs are not permitted: a history has no "+p+" filter"))
			}
		}
		ps := httprouter.ParamsFromContext(r.Context())
		if person {
			eq.Q.Person = ps.ByName("name")
			if eq.Q.Person == "" || utf8.RuneCountInString(eq.Q.Person) > vocab.MaxPersonNameLen || !utf8.ValidString(eq.Q.Person) {
				errs = append(errs, vocab.FieldError{Loc: []any{"path", "name"}, Type: "value_error", Msg: "Value error, not a person name"})
			}
		} else {
			eq.Q.Plate = vocab.NormalizePlate(ps.ByName("text"))
			if eq.Q.Plate == "" || utf8.RuneCountInString(ps.ByName("text")) > vocab.MaxPlateTextLen {
				errs = append(errs, vocab.FieldError{Loc: []any{"path", "text"}, Type: "value_error", Msg: "Value error, not a plate text"})
			}
		}
		if len(errs) > 0 {
			httpx.WriteValidation(w, errs)
			return
		}
		s.page(w, r, eq)
	}
}

func (s *Server) people(w http.ResponseWriter, _ *http.Request) {
	people, err := s.opts.View.People()
	if err != nil {
		s.logger.Error("people failed", "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
		return
	}
	type person struct {
		Name string `json:"name"`
		projections.Aggregate
	}
	out := make([]person, len(people))
	for i, p := range people {
		out[i] = person{p.Name, p}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
