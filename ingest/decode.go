package ingest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Decode reads a request body: one JSON event object, a JSON array of
// them, or NDJSON (one object per line; chosen by ndjson, normally from
// Content-Type application/x-ndjson). It returns every event, or a
// *ValidationError naming every bad item by index and field, or a
// *TooLargeError. Values are checked by Validate as well, so a nil error
// means the batch can be appended as is.
func Decode(r io.Reader, ndjson bool) ([]Event, error) {
	lr := &limitReader{r: r, n: MaxBodyBytes}
	var (
		evs  []Event
		verr ValidationError
	)
	add := func(idx int, raw []byte, indexed bool) {
		var prefix []any
		if indexed {
			prefix = []any{"body", idx}
		} else {
			prefix = []any{"body"}
		}
		before := len(verr.Errors)
		ev, ok := decodeItem(raw, prefix, &verr)
		if ok || len(verr.Errors) < maxReportedErrors {
			// Value checks run even after decode errors, so one answer
			// names every bad field; a field already reported (wrong
			// JSON type) is not reported twice.
			var vv ValidationError
			validate(&ev, prefix, &vv)
			for _, fe := range vv.Errors {
				if !hasLocPrefix(verr.Errors[before:], fe.Loc) {
					verr.add(fe.Loc, fe.Type, fe.Msg)
				}
			}
		}
		evs = append(evs, ev)
	}
	if ndjson {
		sc := bufio.NewScanner(lr)
		sc.Buffer(make([]byte, 0, 64<<10), MaxBodyBytes)
		n := 0
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if n >= MaxItems {
				return nil, &TooLargeError{Msg: fmt.Sprintf("more than %d items in one request", MaxItems)}
			}
			add(n, line, true)
			n++
		}
		if err := sc.Err(); err != nil {
			if lr.exceeded() || errors.Is(err, bufio.ErrTooLong) {
				return nil, &TooLargeError{Msg: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
			}
			return nil, fmt.Errorf("ingest: read body: %w", err)
		}
		if n == 0 {
			verr.add([]any{"body"}, "missing", "Field required")
		}
	} else {
		body, err := io.ReadAll(lr)
		if lr.exceeded() {
			return nil, &TooLargeError{Msg: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		if err != nil {
			return nil, fmt.Errorf("ingest: read body: %w", err)
		}
		body = bytes.TrimSpace(body)
		switch {
		case len(body) == 0:
			verr.add([]any{"body"}, "missing", "Field required")
		case body[0] == '[':
			var items []json.RawMessage
			if err := json.Unmarshal(body, &items); err != nil {
				verr.add([]any{"body", jsonErrOffset(err)}, "json_invalid", "JSON decode error: "+jsonErrMsg(err))
				break
			}
			if len(items) > MaxItems {
				return nil, &TooLargeError{Msg: fmt.Sprintf("%d items in one request, the limit is %d", len(items), MaxItems)}
			}
			if len(items) == 0 {
				verr.add([]any{"body"}, "too_short", "List should have at least 1 item after validation, not 0")
			}
			evs = make([]Event, 0, len(items))
			for i, raw := range items {
				add(i, raw, true)
			}
		default:
			add(0, body, false)
		}
	}
	if len(verr.Errors) > 0 {
		return nil, &verr
	}
	return evs, nil
}

// limitReader reads at most n bytes and remembers whether the body was
// longer.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			l.over = true
			return 0, errors.New("request body too large")
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (l *limitReader) exceeded() bool { return l.over }

func jsonErrOffset(err error) int {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return int(se.Offset)
	}
	return 0
}

func jsonErrMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

func loc(prefix []any, parts ...any) []any {
	l := make([]any, 0, len(prefix)+len(parts))
	return append(append(l, prefix...), parts...)
}

// decodeItem decodes one event object. Field-level problems go to verr;
// ok is false when the item could not be decoded far enough to validate.
func decodeItem(raw []byte, prefix []any, verr *ValidationError) (ev Event, ok bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) || obj == nil && err == nil {
			verr.add(prefix, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from")
		} else {
			verr.add(prefix, "json_invalid", "JSON decode error: "+jsonErrMsg(err))
		}
		return ev, false
	}
	before := len(verr.Errors)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		v := obj[k]
		switch k {
		case "type":
			ev.Type, _ = str(v, loc(prefix, "type"), verr)
		case "ts_ms":
			if !isNull(v) {
				if n, ok := integer(v, loc(prefix, "ts_ms"), verr); ok && n <= 0 {
					verr.add(loc(prefix, "ts_ms"), "greater_than", "Input should be greater than 0")
				} else {
					ev.TsMs = n
				}
			}
		case "frame_source_id":
			ev.Source, _ = str(v, loc(prefix, "frame_source_id"), verr)
		case "payload":
		case "snapshot_jpeg":
			if isNull(v) {
				continue
			}
			s, ok := str(v, loc(prefix, "snapshot_jpeg"), verr)
			if !ok {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				verr.add(loc(prefix, "snapshot_jpeg"), "value_error", "Value error, snapshot_jpeg is not valid base64")
				continue
			}
			ev.Snapshot = b
		default:
			verr.add(loc(prefix, k), "extra_forbidden", "Extra inputs are not permitted")
		}
	}
	for _, req := range []string{"type", "frame_source_id", "payload"} {
		if _, ok := obj[req]; !ok {
			verr.add(loc(prefix, req), "missing", "Field required")
		}
	}
	if p, ok := obj["payload"]; ok && (ev.Type == TypeFace || ev.Type == TypePlate) {
		decodePayload(&ev, p, loc(prefix, "payload"), verr)
	}
	return ev, len(verr.Errors) == before
}

func decodePayload(ev *Event, raw json.RawMessage, prefix []any, verr *ValidationError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		verr.add(prefix, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from")
		return
	}
	face := ev.Type == TypeFace
	var f Face
	var p Plate
	required := []string{"plate_text", "confidence"}
	if face {
		required = []string{"person_name", "similarity", "bbox"}
	}
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			verr.add(loc(prefix, k), "missing", "Field required")
		}
	}
	extraSize := 0
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		v := obj[k]
		l := loc(prefix, k)
		switch {
		case face && k == "person_name":
			f.PersonName, _ = str(v, l, verr)
		case face && k == "similarity":
			f.Similarity, _ = number(v, l, verr)
		case face && k == "bbox":
			f.BBox, _ = bbox(v, l, verr)
		case face && k == "embedding_distance":
			if !isNull(v) {
				if d, ok := number(v, l, verr); ok {
					f.EmbeddingDistance = &d
				}
			}
		case !face && k == "plate_text":
			p.PlateText, _ = str(v, l, verr)
		case !face && k == "confidence":
			p.Confidence, _ = number(v, l, verr)
		case !face && k == "region":
			if !isNull(v) {
				p.Region, _ = str(v, l, verr)
			}
		case !face && k == "list_match":
			p.ListMatchSet = true
			if !isNull(v) {
				p.ListMatch, _ = str(v, l, verr)
				if p.ListMatch == "" {
					// "" would encode as null: refuse it like any other
					// value outside the enum.
					p.ListMatch = "\x00"
				}
			}
		case !face && k == "bbox":
			if !isNull(v) {
				if b, ok := bbox(v, l, verr); ok {
					p.BBox = &b
				}
			}
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				verr.add(l, "json_invalid", "JSON decode error")
				continue
			}
			extraSize += len(k) + buf.Len() + 4
			if ev.Extra == nil {
				ev.Extra = map[string]json.RawMessage{}
			}
			ev.Extra[k] = buf.Bytes()
		}
	}
	if extraSize > MaxExtraPayloadBytes {
		verr.add(prefix, "too_long", fmt.Sprintf("extra payload fields take %d bytes, the limit is %d", extraSize, MaxExtraPayloadBytes))
	}
	if face {
		ev.Face = &f
	} else {
		ev.Plate = &p
	}
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

func str(v json.RawMessage, l []any, verr *ValidationError) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		verr.add(l, "string_type", "Input should be a valid string")
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		verr.add(l, "string_type", "Input should be a valid string")
		return "", false
	}
	return s, true
}

func number(v json.RawMessage, l []any, verr *ValidationError) (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		verr.add(l, "float_type", "Input should be a valid number")
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		verr.add(l, "finite_number", "Input should be a finite number")
		return 0, false
	}
	return f, true
}

func integer(v json.RawMessage, l []any, verr *ValidationError) (int64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		verr.add(l, "int_type", "Input should be a valid integer")
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		// 1.0 is an integer to FastAPI; 1.5 and 1e400 are not.
		f, ferr := strconv.ParseFloat(string(v), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			verr.add(l, "int_from_float", "Input should be a valid integer")
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

func bbox(v json.RawMessage, l []any, verr *ValidationError) (BBox, bool) {
	var b BBox
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		verr.add(l, "list_type", "Input should be a valid list")
		return b, false
	}
	if len(raw) != 4 {
		verr.add(l, "too_short", fmt.Sprintf("bbox should have 4 items [x1, y1, x2, y2], not %d", len(raw)))
		return b, false
	}
	ok := true
	for i := range raw {
		f, fok := number(raw[i], loc(l, i), verr)
		b[i] = f
		ok = ok && fok
	}
	return b, ok
}

// sortStrings is insertion sort: objects have a handful of keys and the
// order only makes error lists deterministic.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// hasLocPrefix reports whether an error in errs is at loc or inside it, or
// loc lies inside one of them.
func hasLocPrefix(errs []FieldError, loc []any) bool {
	for _, e := range errs {
		n := min(len(e.Loc), len(loc))
		same := true
		for i := 0; i < n; i++ {
			if e.Loc[i] != loc[i] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}
