package httpd

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/julienschmidt/httprouter"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// EventsQuery is a parsed GET /events request.
//
// Cursor semantics: `after` travels forward (toward newer ids), `before`
// and no cursor travel backward from the newest id, except that
// order=asc without a cursor starts at the oldest id and travels forward.
// A page holds the first `limit` matches in the direction of travel;
// `order` only sets the order within the page (default: asc when
// travelling forward, desc otherwise — so `after` implies asc). The next
// page continues from the farthest id reached, so following `next` links
// visits each match exactly once.
type EventsQuery struct {
	Q projections.Query
	// Order is the order of the page; OrderSet records an explicit order=.
	Asc      bool
	OrderSet bool
	HasAfter bool
}

// ParseEventsQuery parses and validates the query string of GET /events.
func ParseEventsQuery(v url.Values) (EventsQuery, []vocab.FieldError) {
	var eq EventsQuery
	p := httpx.Query{Values: v}
	q := &eq.Q
	q.Limit = vocab.DefaultQueryLimit
	q.Type = p.Type()
	if n, ok := p.Int("since", -1<<62); ok {
		q.HasSince, q.Since = true, n
	}
	if n, ok := p.Int("until", -1<<62); ok {
		q.HasUntil, q.Until = true, n
	}
	if s, ok := p.Get("limit"); ok {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			p.Fail("limit", "int_parsing", "Input should be a valid integer, unable to parse string as an integer")
		case n < 1:
			p.Fail("limit", "greater_than_equal", "Input should be greater than or equal to 1")
		case n > vocab.MaxQueryLimit:
			p.Fail("limit", "less_than_equal", "Input should be less than or equal to "+strconv.Itoa(vocab.MaxQueryLimit))
		default:
			q.Limit = n
		}
	}
	q.Source, _ = p.Source()
	after, hasAfter := p.Int("after", 0)
	before, hasBefore := p.Int("before", 1)
	if hasAfter && hasBefore {
		p.Fail("before", "value_error", "Value error, before and after cannot be combined: page with one cursor")
	}
	if s, ok := p.Get("order"); ok {
		switch s {
		case "asc":
			eq.Asc = true
		case "desc":
		default:
			p.Fail("order", "enum", "Input should be 'asc' or 'desc'")
		}
		eq.OrderSet = true
	}
	q.After, q.Before, eq.HasAfter = uint64(after), uint64(before), hasAfter
	// Direction of travel (see EventsQuery).
	q.Asc = hasAfter || (!hasBefore && eq.OrderSet && eq.Asc)
	if !eq.OrderSet {
		eq.Asc = q.Asc
	}
	q.Reverse = eq.Asc != q.Asc
	return eq, p.Errs
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	eq, errs := ParseEventsQuery(r.URL.Query())
	if len(errs) > 0 {
		httpx.WriteValidation(w, errs)
		return
	}
	s.page(w, r, eq)
}

// page answers one page of eq with the paging headers (GET /events and
// the histories).
func (s *Server) page(w http.ResponseWriter, r *http.Request, eq EventsQuery) {
	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4<<20 { // do not pin huge pages in the pool
			bufPool.Put(bp)
		}
	}()
	body, pg, err := s.opts.View.Query(eq.Q, (*bp)[:0])
	*bp = body
	if err != nil {
		s.logger.Error("query failed", "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
		return
	}
	h := w.Header()
	if pg.Count > 0 {
		h.Set("X-Next-Cursor", strconv.FormatUint(pg.Cursor, 10))
		if pg.More {
			h.Set("Link", "<"+nextLink(r, eq, pg.Cursor)+`>; rel="next"`)
		}
	}
	httpx.WriteRaw(w, http.StatusOK, body)
}

// nextLink keeps every filter and replaces the cursor.
func nextLink(r *http.Request, eq EventsQuery, cursor uint64) string {
	v := r.URL.Query()
	v.Del("after")
	v.Del("before")
	for k := range v {
		if tokenKey(k) {
			delete(v, k)
		}
	}
	c := strconv.FormatUint(cursor, 10)
	if eq.Q.Asc {
		v.Set("after", c)
	} else {
		v.Set("before", c)
	}
	if eq.OrderSet || eq.Asc != eq.Q.Asc || (eq.Q.Asc && !eq.HasAfter) {
		// Keep the page order explicit once the cursor alone would imply
		// another.
		if eq.Asc {
			v.Set("order", "asc")
		} else {
			v.Set("order", "desc")
		}
	}
	// A relative reference (RFC 8288 resolves it against the request's
	// URL): building an absolute one from r.Host would echo a header the
	// client chooses, and behind a proxy it names the wrong host anyway.
	return r.URL.EscapedPath() + "?" + v.Encode()
}

func parseID(w http.ResponseWriter, ps httprouter.Params) (uint64, bool) {
	id, err := strconv.ParseUint(ps.ByName("event_id"), 10, 64)
	if err != nil {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "event_id"}, Msg: "Input should be a valid integer, unable to parse string as an integer", Type: "int_parsing"}})
		return 0, false
	}
	return id, true
}

// eventByID serves /events/:id (typ 0), /faces/:id and /plates/:id.
func (s *Server) eventByID(typ uint8, notFound string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := parseID(w, httprouter.ParamsFromContext(r.Context()))
		if !ok {
			return
		}
		t, js, err := s.opts.View.Event(id)
		switch {
		case errors.Is(err, eventlog.ErrNotFound) || (err == nil && typ != 0 && t != typ):
			httpx.WriteDetail(w, http.StatusNotFound, notFound)
		case err != nil:
			s.logger.Error("read event failed", "id", id, "err", err)
			httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
		default:
			httpx.WriteRaw(w, http.StatusOK, js)
		}
	}
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, httprouter.ParamsFromContext(r.Context()))
	if !ok {
		return
	}
	s.writeSnapshot(w, id)
}

// writeSnapshot answers record id's blob as image/jpeg.
func (s *Server) writeSnapshot(w http.ResponseWriter, id uint64) {
	img, err := s.opts.Log.Snapshot(id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		httpx.WriteDetail(w, http.StatusNotFound, "Snapshot not found")
	case err != nil:
		s.logger.Error("read snapshot failed", "id", id, "err", err)
		httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
	default:
		h := w.Header()
		h.Set("Content-Type", "image/jpeg")
		h.Set("Content-Length", strconv.Itoa(len(img)))
		h.Set("Cache-Control", "private, max-age=3600")
		w.Write(img)
	}
}
