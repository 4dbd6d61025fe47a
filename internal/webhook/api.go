package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
)

// Route is one route of the webhooks API, Path in httprouter syntax. The
// server mounts them behind its middleware (auth, CORS, origin check).
type Route struct {
	Method, Path string
	Handler      http.HandlerFunc
}

// Routes are the webhooks API's routes.
func (m *Manager) Routes() []Route {
	return []Route{
		{http.MethodPost, "/webhooks", m.handleCreate},
		{http.MethodGet, "/webhooks", m.handleList},
		{http.MethodGet, "/webhooks/:webhook_id", m.handleGet},
		{http.MethodDelete, "/webhooks/:webhook_id", m.handleDelete},
		{http.MethodPost, "/webhooks/:webhook_id/replay", m.handleReplay},
		{http.MethodPost, "/webhooks/:webhook_id/rotate-secret", m.handleRotate},
		{http.MethodPost, "/webhooks/:webhook_id/enable", m.handleEnable},
	}
}

// View is a webhook as the API answers it.
type View struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Types       []string `json:"types"`
	Sources     []string `json:"sources"`
	ListMatch   *string  `json:"list_match"`
	PersonName  *string  `json:"person_name"`
	Description string   `json:"description"`
	// Secret is present only in the answers to create and rotate-secret.
	Secret        string  `json:"secret,omitempty"`
	State         string  `json:"state"`
	Cursor        uint64  `json:"cursor"`
	Lag           uint64  `json:"lag"`
	Failures      int     `json:"failures"`
	LastError     *string `json:"last_error"`
	LastErrorAt   *string `json:"last_error_at"`
	LastSuccessAt *string `json:"last_success_at"`
	NextRetryAt   *string `json:"next_retry_at"`
	Skipped       uint64  `json:"skipped"`
	CreatedAt     string  `json:"created_at"`
}

// rfc3339ms is the API's time format (as events' created_at).
const rfc3339ms = "2006-01-02T15:04:05.000Z"

func timePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(rfc3339ms)
	return &s
}

func (s status) view() View {
	v := View{
		ID: s.id, URL: s.url, Types: s.types, Sources: s.sources, Description: s.description,
		Secret: s.secret, State: s.state, Cursor: s.cursor, Lag: s.lag, Failures: s.failures,
		LastErrorAt: timePtr(s.lastErrorAt), LastSuccessAt: timePtr(s.lastSuccess),
		NextRetryAt: timePtr(s.retryAt), Skipped: s.skipped,
		CreatedAt: time.UnixMilli(s.createdMs).UTC().Format(rfc3339ms),
	}
	if s.listMatch != "" {
		lm := s.listMatch
		v.ListMatch = &lm
	}
	if s.personName != "" {
		pn := s.personName
		v.PersonName = &pn
	}
	if s.lastError != "" {
		e := s.lastError
		v.LastError = &e
	}
	return v
}

// readBody reads at most MaxBodyBytes; false after answering 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > MaxBodyBytes {
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		httpx.WriteDetail(w, http.StatusBadRequest, "Could not read the request body")
		return nil, false
	}
	if len(b) > MaxBodyBytes {
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	}
	return b, true
}

var tooLarge = fmt.Sprintf("Request too large: the body may have at most %d bytes", MaxBodyBytes)

const notFound = "Webhook not found"

// hookID reads the :webhook_id path parameter; false after answering
// 404 (a malformed id names no webhook).
func hookID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := httprouter.ParamsFromContext(r.Context()).ByName("webhook_id")
	if !validID(id) {
		httpx.WriteDetail(w, http.StatusNotFound, notFound)
		return "", false
	}
	return id, true
}

// writeErr answers an operation's error.
func (m *Manager) writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errNotFound):
		httpx.WriteDetail(w, http.StatusNotFound, notFound)
	case errors.Is(err, errTooMany):
		httpx.WriteDetail(w, http.StatusConflict,
			"Too many webhooks: at most "+strconv.Itoa(m.opts.MaxWebhooks)+"; delete one first")
	case errors.Is(err, errClosed):
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Webhooks are shutting down")
	default:
		m.logger.Error("webhook operation failed", "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable")
	}
}

// afterErr is the 422 of an "after" beyond the log's last id.
func afterErr(last uint64) []vocab.FieldError {
	return []vocab.FieldError{{Loc: []any{"body", "after"}, Type: "less_than_equal",
		Msg: "Input should be less than or equal to " + strconv.FormatUint(last, 10) + " (the last event id)"}}
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, errs := decodeCreate(body)
	if len(errs) == 0 {
		if err := m.policy.checkURL(r.Context(), req.u, m.opts.lookup); err != nil {
			errs.at("value_error", "Value error, "+err.Error(), "url")
		}
	}
	if len(errs) > 0 {
		httpx.WriteValidation(w, errs)
		return
	}
	st, err := m.create(req)
	if errors.Is(err, errFuture) {
		httpx.WriteValidation(w, afterErr(m.opts.Log.LastID()))
		return
	}
	if err != nil {
		m.writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/webhooks/"+st.id)
	httpx.WriteJSON(w, http.StatusCreated, st.view())
}

func (m *Manager) handleList(w http.ResponseWriter, _ *http.Request) {
	last := m.opts.Log.LastID()
	out := []View{}
	for _, h := range m.list() {
		out = append(out, h.status(last).view())
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	id, ok := hookID(w, r)
	if !ok {
		return
	}
	h := m.get(id)
	if h == nil {
		httpx.WriteDetail(w, http.StatusNotFound, notFound)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, h.status(m.opts.Log.LastID()).view())
}

func (m *Manager) handleDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := hookID(w, r)
	if !ok {
		return
	}
	if err := m.remove(id); err != nil {
		m.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *Manager) handleReplay(w http.ResponseWriter, r *http.Request) {
	id, ok := hookID(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	after, errs := decodeReplay(body)
	if len(errs) > 0 {
		httpx.WriteValidation(w, errs)
		return
	}
	st, err := m.replay(id, after)
	if errors.Is(err, errFuture) {
		httpx.WriteValidation(w, afterErr(m.opts.Log.LastID()))
		return
	}
	if err != nil {
		m.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, st.view())
}

func (m *Manager) handleRotate(w http.ResponseWriter, r *http.Request) {
	m.simple(w, r, m.rotate)
}

func (m *Manager) handleEnable(w http.ResponseWriter, r *http.Request) {
	m.simple(w, r, m.enable)
}

// simple serves a bodiless POST /webhooks/{id}/... operation.
func (m *Manager) simple(w http.ResponseWriter, r *http.Request, op func(string) (status, error)) {
	id, ok := hookID(w, r)
	if !ok {
		return
	}
	st, err := op(id)
	if err != nil {
		m.writeErr(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, st.view())
}
