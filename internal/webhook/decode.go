package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/securevision/events/internal/vocab"
)

// Limits of the API's request bodies and of a webhook's fields.
const (
	// MaxBodyBytes bounds a request body: a create body is a URL and a
	// few short lists.
	MaxBodyBytes = 64 << 10
	// MaxURLBytes bounds a webhook URL.
	MaxURLBytes = 2048
	// MaxDescriptionLen bounds a description, in characters.
	MaxDescriptionLen = 1024
	// MaxSources bounds the sources filter.
	MaxSources = 256
	// MaxTypes bounds the types filter (duplicates included).
	MaxTypes = 64
)

// createRequest is a decoded, valid POST /webhooks body. Types and
// Sources are nil when not given (or empty): every detection type, any
// source.
type createRequest struct {
	URL         string
	u           *url.URL
	Types       []string
	Sources     []string
	ListMatch   string
	PersonName  string
	Description string
	After       *uint64
}

// fieldErrs collects FastAPI-shaped errors of a body.
type fieldErrs []vocab.FieldError

func (e *fieldErrs) at(typ, msg string, loc ...any) {
	*e = append(*e, vocab.FieldError{Loc: append([]any{"body"}, loc...), Msg: msg, Type: typ})
}

// decodeObject parses body as one JSON object, as strictly as Python's
// json module in FastAPI: invalid UTF-8 or JSON is json_invalid, another
// JSON value is not an object, and a duplicate key keeps its last value.
// The members are returned raw.
func decodeObject(body []byte) (map[string]json.RawMessage, fieldErrs) {
	var errs fieldErrs
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		errs.at("missing", "Field required")
		return nil, errs
	case !utf8.Valid(body):
		errs.at("json_invalid", "JSON decode error: invalid UTF-8")
		return nil, errs
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		msg := "invalid JSON"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			msg = fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
		}
		errs.at("json_invalid", "JSON decode error: "+msg)
		return nil, errs
	}
	if trimmed[0] != '{' {
		errs.at("model_attributes_type", "Input should be a valid dictionary or object to extract fields from")
		return nil, errs
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		// json.Valid accepted it: cannot happen, but never panic on it.
		errs.at("json_invalid", "JSON decode error: "+err.Error())
		return nil, errs
	}
	return m, nil
}

// isNull reports a JSON null.
func isNull(v json.RawMessage) bool { return string(v) == "null" }

// decodeString reads a JSON string member.
func decodeString(v json.RawMessage, errs *fieldErrs, loc ...any) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		errs.at("string_type", "Input should be a valid string", loc...)
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		errs.at("string_type", "Input should be a valid string", loc...)
		return "", false
	}
	return s, true
}

// decodeStrings reads an optional list of strings (null: not given).
func decodeStrings(v json.RawMessage, max int, errs *fieldErrs, field string) []string {
	if isNull(v) {
		return nil
	}
	if len(v) == 0 || v[0] != '[' {
		errs.at("list_type", "Input should be a valid list", field)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		errs.at("list_type", "Input should be a valid list", field)
		return nil
	}
	if len(items) > max {
		errs.at("too_long", fmt.Sprintf("List should have at most %d items after validation, not %d", max, len(items)), field)
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		if s, ok := decodeString(it, errs, field, i); ok {
			out = append(out, s)
		}
	}
	return out
}

// decodeAfter reads an event id: a JSON integer >= 0 (a number with a
// fraction or an exponent is not an integer here).
func decodeAfter(v json.RawMessage, errs *fieldErrs) (uint64, bool) {
	s := string(v)
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		errs.at("int_type", "Input should be a valid integer", "after")
		return 0, false
	}
	if neg {
		errs.at("greater_than_equal", "Input should be greater than or equal to 0", "after")
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		errs.at("int_type", "Input should be a valid integer, too large", "after")
		return 0, false
	}
	return n, true
}

// decodeCreate reads a POST /webhooks body. Unknown members are refused
// (extra_forbidden), as POST /ingest refuses unknown top-level fields, so
// a misspelt filter ("type" for "types") is an error rather than a
// webhook that receives everything. The URL's form is checked here; its
// destination by policy.checkURL.
func decodeCreate(body []byte) (createRequest, fieldErrs) {
	var req createRequest
	m, errs := decodeObject(body)
	if errs != nil {
		return req, errs
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // errors in a stable order
	for _, k := range keys {
		v := m[k]
		switch k {
		case "url":
			if s, ok := decodeString(v, &errs, "url"); ok {
				req.URL = s
				req.u = checkURLForm(s, &errs)
			}
		case "types":
			req.Types = decodeStrings(v, MaxTypes, &errs, "types")
			for i, t := range req.Types {
				if vocab.TypeCode(t) == 0 {
					errs.at("enum", vocab.TypeEnumMsg, "types", i)
				}
			}
		case "sources":
			req.Sources = decodeStrings(v, MaxSources, &errs, "sources")
			for i, s := range req.Sources {
				if n := utf8.RuneCountInString(s); n < 1 || n > vocab.MaxSourceLen {
					errs.at("string_too_long", fmt.Sprintf("String should have 1 to %d characters", vocab.MaxSourceLen), "sources", i)
				}
			}
		case "list_match":
			if isNull(v) {
				break
			}
			if s, ok := decodeString(v, &errs, "list_match"); ok {
				if s != vocab.Whitelist && s != vocab.Blacklist {
					errs.at("enum", vocab.ListMatchEnumMsg, "list_match")
				}
				req.ListMatch = s
			}
		case "person_name":
			if isNull(v) {
				break
			}
			if s, ok := decodeString(v, &errs, "person_name"); ok {
				if n := utf8.RuneCountInString(s); n < 1 || n > vocab.MaxPersonNameLen {
					errs.at("string_too_long", fmt.Sprintf("String should have 1 to %d characters", vocab.MaxPersonNameLen), "person_name")
				}
				req.PersonName = s
			}
		case "description":
			if isNull(v) {
				break
			}
			if s, ok := decodeString(v, &errs, "description"); ok {
				if utf8.RuneCountInString(s) > MaxDescriptionLen {
					errs.at("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxDescriptionLen), "description")
				}
				req.Description = s
			}
		case "after":
			if isNull(v) {
				break
			}
			if n, ok := decodeAfter(v, &errs); ok {
				req.After = &n
			}
		default:
			errs.at("extra_forbidden", "Extra inputs are not permitted", k)
		}
	}
	if _, ok := m["url"]; !ok {
		errs.at("missing", "Field required", "url")
	}
	if len(req.Types) == 0 {
		req.Types = nil
	}
	if len(req.Sources) == 0 {
		req.Sources = nil
	}
	return req, errs
}

// checkURLForm checks what a URL must look like: absolute, http or
// https, a host, no user information (it would be returned by every GET
// and could end up in logs; put credentials in the receiver's checks of
// the signature instead), at most MaxURLBytes.
func checkURLForm(s string, errs *fieldErrs) *url.URL {
	if len(s) > MaxURLBytes {
		errs.at("string_too_long", fmt.Sprintf("URL should have at most %d bytes", MaxURLBytes), "url")
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		errs.at("url_parsing", "Input should be a valid URL", "url")
		return nil
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		errs.at("url_scheme", "URL scheme should be 'http' or 'https'", "url")
	case u.Opaque != "" || u.Hostname() == "":
		errs.at("url_parsing", "Input should be a valid URL, empty host", "url")
	case u.User != nil:
		errs.at("value_error", "Value error, the URL must not carry user information (credentials)", "url")
	default:
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				errs.at("url_parsing", "Input should be a valid URL, invalid port number", "url")
				return nil
			}
		}
		u.Scheme = scheme
		return u
	}
	return nil
}

// decodeReplay reads a POST /webhooks/{id}/replay body: {"after": N}.
func decodeReplay(body []byte) (uint64, fieldErrs) {
	m, errs := decodeObject(body)
	if errs != nil {
		return 0, errs
	}
	var after uint64
	v, ok := m["after"]
	switch {
	case !ok:
		errs.at("missing", "Field required", "after")
	case isNull(v):
		errs.at("int_type", "Input should be a valid integer", "after")
	default:
		after, _ = decodeAfter(v, &errs)
	}
	for k := range m {
		if k != "after" {
			errs.at("extra_forbidden", "Extra inputs are not permitted", k)
		}
	}
	return after, errs
}
