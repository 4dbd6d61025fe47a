package ingest

import (
	"fmt"
	"strings"

	"github.com/securevision/events/internal/vocab"
)

// ValidationError lists every problem found in a request, in the shape of
// FastAPI's 422 detail list. Nothing of the request was appended.
type ValidationError struct {
	Errors []vocab.FieldError
}

// maxReportedErrors bounds a 422 body: a 10,000-item batch of garbage must
// not produce a response larger than the request.
const maxReportedErrors = 1000

func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "ingest: invalid request"
	}
	f := e.Errors[0]
	parts := make([]string, len(f.Loc))
	for i, l := range f.Loc {
		parts[i] = fmt.Sprint(l)
	}
	return fmt.Sprintf("ingest: %d invalid field(s), first %s: %s", len(e.Errors), strings.Join(parts, "."), f.Msg)
}

// path locates an item of a request for error messages. The []any loc of
// FastAPI's shape is built only when an error is reported: building it for
// every field cost several allocations per event on the ingest hot path.
type path struct {
	item    int  // index of the item in the request; -1 for a single object
	payload bool // under "payload"
}

func (p path) loc(parts ...any) []any {
	l := make([]any, 0, 3+len(parts))
	l = append(l, "body")
	if p.item >= 0 {
		l = append(l, p.item)
	}
	if p.payload {
		l = append(l, "payload")
	}
	return append(l, parts...)
}

// at reports a problem at p plus parts.
func (e *ValidationError) at(p path, typ, msg string, parts ...any) {
	if len(e.Errors) < maxReportedErrors {
		e.add(p.loc(parts...), typ, msg)
	}
}

func (e *ValidationError) add(loc []any, typ, msg string) {
	if len(e.Errors) < maxReportedErrors {
		e.Errors = append(e.Errors, vocab.FieldError{Loc: loc, Msg: msg, Type: typ})
	}
}

// TooLargeError reports a request over the item or byte limit (HTTP 413).
type TooLargeError struct{ Msg string }

func (e *TooLargeError) Error() string { return "ingest: " + e.Msg }
