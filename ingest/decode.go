package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/valyala/fastjson"

	"github.com/securevision/events/internal/vocab"
)

// The decoder parses with github.com/valyala/fastjson: one item at a time
// into a reusable DOM that keeps object key order, with no reflection.
// encoding/json needed two passes (map[string]json.RawMessage, then each
// field) and allocated for every field of every event. fastjson is
// lenient where
// JSON is strict (leading zeros, raw control characters in strings), so
// the scanner (scan.go) checks the body against the grammar first and
// finds the items; strings are re-encoded by appendString, never copied
// as raw text, and duplicate keys keep their last value (visitLast).
var decoders = sync.Pool{New: func() any { return &decoder{strs: map[string]string{}} }}

// decoder is the reusable state of one Decode call: the body buffer,
// fastjson's parser (with its copy of the body and its value cache), a
// scratch buffer for number text and an intern table for repeated short
// strings. Pooled, so that decoding allocates only what the events keep.
type decoder struct {
	parser fastjson.Parser
	verr   *ValidationError
	// body holds the request body while it is parsed. fastjson copies
	// what it parses and events copy their strings, so nothing decoded
	// refers to it and it is reused by the next request.
	body []byte
	num  []byte
	// spans are the items the scanner found in the body.
	spans []span
	// strs interns short strings (camera ids, watchlist names, regions):
	// a batch repeats them for most of its events, and each would
	// otherwise be a separate allocation.
	strs map[string]string
}

// Intern table bounds: strings longer than maxInternLen are copied every
// time, and the table is emptied when it reaches maxInterned entries, so a
// pooled decoder holds at most about 16 KiB of strings.
const (
	maxInternLen = 64
	maxInterned  = 256
)

// A decoder goes back to the pool only after a body of at most
// maxPooledBody bytes and maxPooledValues JSON values: its body buffer and
// fastjson's copy grow with the bytes, fastjson's value cache (about 100
// bytes per value, kept across parses) with the values. A pooled decoder
// thus holds at most about 9 MiB; a 1000-event batch has about 20k values.
const (
	maxPooledBody   = 1 << 20
	maxPooledValues = 1 << 16
)

// poolable reports whether a decoder that parsed body may be pooled. Every
// JSON value but the first follows a ',', ':' or '['; counting those bytes
// (inside strings too) bounds the values from above, at memory speed.
func poolable(body []byte) bool {
	if len(body) > maxPooledBody {
		return false
	}
	n := 1 + bytes.Count(body, []byte{','}) + bytes.Count(body, []byte{':'}) + bytes.Count(body, []byte{'['})
	return n <= maxPooledValues
}

// intern returns b as a string, shared with earlier equal strings.
func (d *decoder) intern(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if len(d.strs) >= maxInterned {
		clear(d.strs)
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// Decode reads a request body: one JSON event object, a JSON array of
// them, or NDJSON (one object per line; chosen by ndjson, normally from
// Content-Type application/x-ndjson). It returns every event, or a
// *ValidationError naming every bad item by index and field, or a
// *TooLargeError. Values are checked by Validate as well, so a nil error
// means the batch can be appended as is.
func Decode(r io.Reader, ndjson bool) ([]Event, error) {
	d := decoders.Get().(*decoder)
	defer func() {
		d.verr = nil
		if poolable(d.body) {
			decoders.Put(d)
		}
	}()
	lr := &limitReader{r: r, n: vocab.MaxBodyBytes}
	body, err := readAll(d.body[:0], lr)
	d.body = body
	if lr.exceeded() {
		return nil, &TooLargeError{Msg: fmt.Sprintf("request body larger than %d bytes", vocab.MaxBodyBytes)}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: read body: %w", err)
	}
	var (
		evs  []Event
		verr ValidationError
	)
	d.verr = &verr
	parser := &d.parser
	add := func(v *fastjson.Value, p path) {
		before := len(verr.Errors)
		ev, _ := d.item(v, p)
		// Value checks run even after decode errors, so one answer names
		// every bad field; a field already reported (wrong JSON type) is
		// not reported twice.
		var vv ValidationError
		validate(&ev, p, &vv)
		for _, fe := range vv.Errors {
			if !hasLocPrefix(verr.Errors[before:], fe.Loc) {
				verr.add(fe.Loc, fe.Type, fe.Msg)
			}
		}
		evs = append(evs, ev)
	}
	// Each item is parsed on its own, after the scanner has checked the
	// body and counted the item's values (see scan.go).
	parseItem := func(b []byte, sp span, p path) {
		if sp.values > maxItemValues {
			verr.at(p, "too_long", fmt.Sprintf("an event has at most %d JSON values", maxItemValues))
			evs = append(evs, Event{})
			return
		}
		v, err := parser.ParseBytes(b[sp.start:sp.end])
		if err != nil { // the scanner let through what fastjson refuses
			verr.at(p, "json_invalid", "JSON decode error: "+err.Error())
			evs = append(evs, Event{})
			return
		}
		add(v, p)
	}
	if ndjson {
		n := 0
		for rest := body; len(rest) > 0; {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if n >= vocab.MaxItems {
				return nil, &TooLargeError{Msg: fmt.Sprintf("more than %d items in one request", vocab.MaxItems)}
			}
			item := path{item: n}
			n++
			sp, err := scanLine(line)
			if err != nil {
				verr.at(item, "json_invalid", "JSON decode error: "+err.Error())
				evs = append(evs, Event{})
				continue
			}
			parseItem(line, sp, item)
		}
		if n == 0 {
			verr.add([]any{"body"}, "missing", "Field required")
		}
	} else {
		if len(bytes.TrimSpace(body)) == 0 {
			verr.add([]any{"body"}, "missing", "Field required")
			return nil, &verr
		}
		spans, array, err := scanBody(body, d.spans[:0])
		d.spans = spans
		var tooLarge *TooLargeError
		if errors.As(err, &tooLarge) {
			return nil, tooLarge
		}
		if err != nil {
			verr.add([]any{"body"}, "json_invalid", "JSON decode error: "+err.Error())
			return nil, &verr
		}
		if array {
			if len(spans) == 0 {
				verr.add([]any{"body"}, "too_short", "List should have at least 1 item after validation, not 0")
			}
			evs = make([]Event, 0, len(spans))
			for i, sp := range spans {
				parseItem(body, sp, path{item: i})
			}
		} else {
			parseItem(body, spans[0], path{item: -1})
		}
	}
	if len(verr.Errors) > 0 {
		return nil, &verr
	}
	return evs, nil
}

// readAll is io.ReadAll appending to b, so a pooled buffer is reused.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	if cap(b) == 0 {
		b = make([]byte, 0, 512)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append pick the growth
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
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

// item decodes one event object. Field-level problems go to d.verr; ok is
// false when the item is not an object.
func (d *decoder) item(v *fastjson.Value, p path) (ev Event, ok bool) {
	verr := d.verr
	obj, err := v.Object()
	if err != nil {
		verr.at(p, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from")
		return ev, false
	}
	var payload *fastjson.Value
	var seenType, seenSource bool
	visitLast(obj, func(k []byte, fv *fastjson.Value) {
		switch string(k) {
		case "type":
			// The two valid types are constants: no copy for them.
			switch b, _ := fv.StringBytes(); string(b) {
			case vocab.FaceMatch:
				ev.Type = vocab.FaceMatch
			case vocab.PlateRead:
				ev.Type = vocab.PlateRead
			default:
				ev.Type, _ = d.str(fv, p, "type")
			}
			seenType = true
		case "ts_ms":
			if fv.Type() != fastjson.TypeNull {
				if n, ok := d.integer(fv, p, "ts_ms"); ok && n <= 0 {
					verr.at(p, "greater_than", "Input should be greater than 0", "ts_ms")
				} else {
					ev.TsMs = n
				}
			}
		case "frame_source_id":
			ev.Source, _ = d.str(fv, p, "frame_source_id")
			seenSource = true
		case "payload":
			payload = fv
		case "snapshot_jpeg":
			if fv.Type() == fastjson.TypeNull {
				return
			}
			b, err := fv.StringBytes()
			if err != nil {
				verr.at(p, "string_type", "Input should be a valid string", "snapshot_jpeg")
				return
			}
			if base64.StdEncoding.DecodedLen(len(b)) > vocab.MaxSnapshotBytes+3 {
				verr.at(p, "too_long", fmt.Sprintf("snapshot is larger than %d bytes", vocab.MaxSnapshotBytes), "snapshot_jpeg")
				return
			}
			img := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
			n, err := base64.StdEncoding.Decode(img, b)
			if err != nil {
				verr.at(p, "value_error", "Value error, snapshot_jpeg is not valid base64", "snapshot_jpeg")
				return
			}
			ev.Snapshot = img[:n]
		default:
			verr.at(p, "extra_forbidden", "Extra inputs are not permitted", string(k))
		}
	})
	if !seenType {
		verr.at(p, "missing", "Field required", "type")
	}
	if !seenSource {
		verr.at(p, "missing", "Field required", "frame_source_id")
	}
	if payload == nil {
		verr.at(p, "missing", "Field required", "payload")
	} else if vocab.DetectionCode(ev.Type) != 0 {
		d.payload(&ev, payload, path{item: p.item, payload: true})
	}
	return ev, true
}

func (d *decoder) payload(ev *Event, v *fastjson.Value, pl path) {
	verr := d.verr
	obj, err := v.Object()
	if err != nil {
		verr.at(path{item: pl.item}, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from", "payload")
		return
	}
	face := ev.Type == vocab.FaceMatch
	var f Face
	var p Plate
	var seen [3]bool // which of required were present
	required := [3]string{"plate_text", "confidence", ""}
	if face {
		required = [3]string{"person_name", "similarity", "bbox"}
	}
	extraSize := 0
	visitLast(obj, func(kb []byte, fv *fastjson.Value) {
		null := fv.Type() == fastjson.TypeNull
		// switch on string(kb) compares without allocating; field names in
		// error locations are constants for the same reason.
		if face {
			switch string(kb) {
			case "person_name":
				seen[0] = true
				f.PersonName, _ = d.str(fv, pl, "person_name")
				return
			case "similarity":
				seen[1] = true
				f.Similarity, _ = d.number(fv, pl, "similarity", -1)
				return
			case "bbox":
				seen[2] = true
				f.BBox, _ = d.bbox(fv, pl, "bbox")
				return
			case "embedding_distance":
				if !null {
					if d, ok := d.number(fv, pl, "embedding_distance", -1); ok {
						f.EmbeddingDistance = &d
					}
				}
				return
			}
		} else {
			switch string(kb) {
			case "plate_text":
				seen[0] = true
				p.PlateText, _ = d.str(fv, pl, "plate_text")
				return
			case "confidence":
				seen[1] = true
				p.Confidence, _ = d.number(fv, pl, "confidence", -1)
				return
			case "region":
				if !null {
					p.Region, _ = d.str(fv, pl, "region")
				}
				return
			case "list_match":
				p.ListMatchSet = true
				if !null {
					p.ListMatch, _ = d.str(fv, pl, "list_match")
					if p.ListMatch == "" {
						// "" would encode as null: refuse it like any
						// other value outside the enum.
						p.ListMatch = "\x00"
					}
				}
				return
			case "bbox":
				if !null {
					if b, ok := d.bbox(fv, pl, "bbox"); ok {
						p.BBox = &b
					}
				}
				return
			}
		}
		// A field this version does not know: kept for forward
		// compatibility, re-encoded canonically.
		k := string(kb)
		js, ok := canonical(nil, fv)
		if !ok {
			verr.at(pl, "json_invalid", "JSON decode error: invalid number", k)
			return
		}
		extraSize += len(k) + len(js) + 4
		if extraSize > vocab.MaxExtraPayloadBytes {
			return // reported once below
		}
		if ev.Extra == nil {
			ev.Extra = map[string]json.RawMessage{}
		}
		ev.Extra[k] = js
	})
	for i, r := range required {
		if r != "" && !seen[i] {
			verr.at(pl, "missing", "Field required", r)
		}
	}
	if extraSize > vocab.MaxExtraPayloadBytes {
		verr.at(path{item: pl.item}, "too_long", fmt.Sprintf("extra payload fields take more than %d bytes", vocab.MaxExtraPayloadBytes), "payload")
	}
	if face {
		ev.Face = &f
	} else {
		ev.Plate = &p
	}
}

// member is one key and value of a JSON object.
type member struct {
	k []byte
	v *fastjson.Value
}

// smallObject is how many members visitLast compares pairwise; larger
// objects (only extra payload fields can be) use a map.
const smallObject = 16

// visitLast calls fn once for each distinct key of o, in the order of the
// key's first occurrence, with the key's last value: what Python's json
// module (a dict) makes of duplicate keys. fastjson keeps them all, and
// its Get returns the first.
func visitLast(o *fastjson.Object, fn func(k []byte, v *fastjson.Value)) {
	if o.Len() <= 1 {
		o.Visit(fn)
		return
	}
	var buf [smallObject]member
	ms := buf[:0]
	o.Visit(func(k []byte, v *fastjson.Value) { ms = append(ms, member{k, v}) })
	var first map[string]int
	if len(ms) <= smallObject {
		dup := false
		for i := 1; i < len(ms) && !dup; i++ {
			for j := 0; j < i; j++ {
				if len(ms[i].k) == len(ms[j].k) && string(ms[i].k) == string(ms[j].k) {
					dup = true
					break
				}
			}
		}
		if !dup {
			for _, m := range ms {
				fn(m.k, m.v)
			}
			return
		}
	}
	// Keep each key's first position and last value, in place: out is
	// never longer than the part of ms already read.
	first = make(map[string]int, len(ms))
	out := ms[:0]
	for _, m := range ms {
		if i, ok := first[string(m.k)]; ok {
			out[i].v = m.v
			continue
		}
		first[string(m.k)] = len(out)
		out = append(out, m)
	}
	for _, m := range out {
		fn(m.k, m.v)
	}
}

// canonical writes v as compact JSON with strings re-escaped by
// appendString; ok is false for a number JSON does not allow (NaN, Inf).
func canonical(dst []byte, v *fastjson.Value) ([]byte, bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = append(dst, '{')
		ok, first := true, true
		visitLast(o, func(k []byte, fv *fastjson.Value) {
			if !ok {
				return
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendString(dst, string(k))
			dst = append(dst, ':')
			dst, ok = canonical(dst, fv)
		})
		return append(dst, '}'), ok
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = append(dst, '[')
		for i, e := range a {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = canonical(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return appendString(dst, string(b)), true
	case fastjson.TypeNumber:
		raw := v.MarshalTo(nil)
		if !validNumber(raw) {
			return dst, false
		}
		return append(dst, raw...), true
	default: // true, false, null
		return v.MarshalTo(dst), true
	}
}

// validNumber checks s against JSON's number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (d *decoder) str(v *fastjson.Value, p path, field string) (string, bool) {
	b, err := v.StringBytes()
	if err != nil {
		d.verr.at(p, "string_type", "Input should be a valid string", field)
		return "", false
	}
	return d.intern(b), true
}

// numText returns the raw text of a JSON number, in the decoder's scratch
// buffer (valid until the next call).
func (d *decoder) numText(v *fastjson.Value) []byte {
	d.num = v.MarshalTo(d.num[:0])
	return d.num
}

// atIdx reports at p.field or p.field[idx] (idx >= 0); the location is
// built only here, on the error path.
func (e *ValidationError) atIdx(p path, typ, msg, field string, idx int) {
	if idx < 0 {
		e.at(p, typ, msg, field)
	} else {
		e.at(p, typ, msg, field, idx)
	}
}

func (d *decoder) number(v *fastjson.Value, p path, field string, idx int) (float64, bool) {
	verr := d.verr
	if v.Type() != fastjson.TypeNumber {
		verr.atIdx(p, "float_type", "Input should be a valid number", field, idx)
		return 0, false
	}
	raw := d.numText(v)
	f, err := strconv.ParseFloat(string(raw), 64)
	if !validNumber(raw) || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		verr.atIdx(p, "finite_number", "Input should be a finite number", field, idx)
		return 0, false
	}
	return f, true
}

func (d *decoder) integer(v *fastjson.Value, p path, field string) (int64, bool) {
	verr := d.verr
	if v.Type() != fastjson.TypeNumber {
		verr.at(p, "int_type", "Input should be a valid integer", field)
		return 0, false
	}
	raw := d.numText(v)
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		// 1.0 is an integer to FastAPI; 1.5 and 1e400 are not.
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if !validNumber(raw) || ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			verr.at(p, "int_from_float", "Input should be a valid integer", field)
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

func (d *decoder) bbox(v *fastjson.Value, p path, field string) (BBox, bool) {
	verr := d.verr
	var b BBox
	a, err := v.Array()
	if err != nil {
		verr.at(p, "list_type", "Input should be a valid list", field)
		return b, false
	}
	if len(a) != 4 {
		verr.at(p, "too_short", fmt.Sprintf("bbox should have 4 items [x1, y1, x2, y2], not %d", len(a)), field)
		return b, false
	}
	ok := true
	for i := range a {
		f, fok := d.number(a[i], p, field, i)
		b[i] = f
		ok = ok && fok
	}
	return b, ok
}

// hasLocPrefix reports whether an error in errs is at loc or inside it, or
// loc lies inside one of them.
func hasLocPrefix(errs []vocab.FieldError, loc []any) bool {
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
