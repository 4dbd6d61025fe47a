package ingest

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one entry of a FastAPI-shaped 422 detail list.
type FieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// ValidationError lists every problem found in a request. Nothing of the
// request was appended.
type ValidationError struct {
	Errors []FieldError
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

func (e *ValidationError) add(loc []any, typ, msg string) {
	if len(e.Errors) < maxReportedErrors {
		e.Errors = append(e.Errors, FieldError{Loc: loc, Msg: msg, Type: typ})
	}
}

// TooLargeError reports a request over the item or byte limit (HTTP 413).
type TooLargeError struct{ Msg string }

func (e *TooLargeError) Error() string { return "ingest: " + e.Msg }

// IsValidation reports whether err is a *ValidationError.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
