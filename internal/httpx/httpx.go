// Package httpx is what the REST API (httpd) and the WebSocket stream
// (wsfanout) share of HTTP: reading the query parameters both take (type,
// source, a cursor), with FastAPI's 422 errors, and writing JSON answers
// and FastAPI's error bodies. Both answer GET requests with the same
// parameters and the same error shapes, so they parse and write them with
// the same code.
//
// It is a separate package from vocab, which declares the shapes, so that
// vocab stays declarations only and the packages that need the vocabulary
// but not HTTP (ingest, projections) do not import net/http through it.
// httpx imports only the standard library and vocab.
package httpx

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/securevision/events/internal/vocab"
)

// WriteJSON answers status with v marshalled; if v does not marshal, 500
// with {"detail":"Internal Server Error"}.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"Internal Server Error"}`)
	}
	WriteRaw(w, status, b)
}

// WriteRaw answers status with b, which is JSON.
func WriteRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// WriteDetail answers status with FastAPI's {"detail": msg}.
func WriteDetail(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, vocab.ErrorBody{Detail: msg})
}

// WriteValidation answers 422 with FastAPI's list of field errors.
func WriteValidation(w http.ResponseWriter, errs []vocab.FieldError) {
	WriteJSON(w, http.StatusUnprocessableEntity, vocab.ValidationBody{Detail: errs})
}

// Query reads query parameters as FastAPI does: a parameter given more
// than once counts by its last value, and every problem found is kept in
// Errs, to be answered with WriteValidation once all are read.
type Query struct {
	Values url.Values
	Errs   []vocab.FieldError
}

// Get returns the last value of parameter name and whether it was given.
func (q *Query) Get(name string) (string, bool) {
	vs := q.Values[name]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// Fail records an error on parameter name.
func (q *Query) Fail(name, typ, msg string) {
	q.Errs = append(q.Errs, vocab.QueryError(name, typ, msg))
}

// Int reads an integer parameter that must be at least min. ok is false
// when it was not given or is invalid (then an error is recorded).
func (q *Query) Int(name string, min int64) (n int64, ok bool) {
	s, ok := q.Get(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		q.Fail(name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer")
		return 0, false
	}
	if n < min {
		q.Fail(name, "greater_than_equal", "Input should be greater than or equal to "+strconv.FormatInt(min, 10))
		return 0, false
	}
	return n, true
}

// Type reads ?type=, an event type name: its code, 0 when the parameter
// was not given or names no type (then an error is recorded).
func (q *Query) Type() uint8 {
	s, ok := q.Get("type")
	if !ok {
		return 0
	}
	code := vocab.TypeCode(s)
	if code == 0 {
		q.Fail("type", "enum", vocab.QueryTypeEnumMsg)
	}
	return code
}

// Source reads ?source=, a frame_source_id, and whether it was given. One
// that no event can have (empty, too long, not UTF-8) records an error.
func (q *Query) Source() (string, bool) {
	s, ok := q.Get("source")
	if ok {
		if n := utf8.RuneCountInString(s); n < 1 || n > vocab.MaxSourceLen || !utf8.ValidString(s) {
			q.Fail("source", "string_too_long", "source should have 1 to "+strconv.Itoa(vocab.MaxSourceLen)+" characters")
		}
	}
	return s, ok
}
