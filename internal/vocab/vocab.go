// Package vocab is the service's vocabulary: the words and numbers that the
// write path (ingest), the read side (projections), the stream (wsfanout),
// the REST API (httpd) and its OpenAPI document (httpd/apidocs) must agree
// on, stated once.
//
// It holds the event type names and the codes that stand for them on disk,
// the watchlist verdicts of plate_read's list_match, the limits a request
// and its fields must keep to, the identity the API reports, and FastAPI's
// error bodies ({"detail": "..."} and the 422 list of field errors), in
// which every layer answers.
//
// vocab is a leaf: it imports only the standard library (a layering test,
// internal/layering_test.go, keeps it so). Any package may import it
// without importing another layer with it, so ingest states the event types
// without depending on projections, and projections reads the codes
// without depending on ingest.
//
// Everything here is a constant, a type or a pure function: nothing can be
// changed at run time.
package vocab

import (
	"strings"
	"unicode"
)

// Service identity: reported by GET / and GET /health and in the OpenAPI
// document's info.
const (
	ServiceName = "SecureVision Events API"
	Version     = "0.1.0"
)

// Event type names, the "type" member of every event. The detections
// (face_match, plate_read) are what cameras produce and POST /ingest
// accepts; the others record an operator's action in the same log:
//
//   - correction: an operator's fix of one detection (the person, the
//     plate text, or "not a detection at all"); reads of the detection
//     carry the newest one.
//   - watchlist_change: a plate put on or taken off a watchlist.
//   - gallery_change: a face image added to or removed from a person's
//     gallery.
//   - erasure: a person's or a plate's data erased on request; it holds
//     only a salted hash of what was erased.
const (
	FaceMatch       = "face_match"
	PlateRead       = "plate_read"
	Correction      = "correction"
	WatchlistChange = "watchlist_change"
	GalleryChange   = "gallery_change"
	Erasure         = "erasure"
)

// Event type codes: the byte that stands for a type in the log's record
// headers and in the keys of the type index. They are stored on disk, so a
// code is never renumbered or reused. 0 is no type: TypeCode's answer for
// an unknown name, and "the detections" in a query filter.
const (
	FaceMatchCode       uint8 = 1
	PlateReadCode       uint8 = 2
	CorrectionCode      uint8 = 3
	WatchlistChangeCode uint8 = 4
	GalleryChangeCode   uint8 = 5
	ErasureCode         uint8 = 6
	// MaxTypeCode is the largest code. Codes run from 1 to MaxTypeCode
	// without holes, so a [MaxTypeCode + 1]T array indexed by code holds
	// one T per type (and one unused at 0).
	MaxTypeCode = ErasureCode
)

// TypeCode returns the code of an event type name, 0 if the name is not a
// type. It is a switch, not a map lookup: ingest calls it for every
// appended event and the query parsers for every request.
func TypeCode(name string) uint8 {
	switch name {
	case FaceMatch:
		return FaceMatchCode
	case PlateRead:
		return PlateReadCode
	case Correction:
		return CorrectionCode
	case WatchlistChange:
		return WatchlistChangeCode
	case GalleryChange:
		return GalleryChangeCode
	case Erasure:
		return ErasureCode
	}
	return 0
}

// DetectionCode returns the code of a detection type name (what POST
// /ingest accepts), 0 for any other name.
func DetectionCode(name string) uint8 {
	if c := TypeCode(name); IsDetection(c) {
		return c
	}
	return 0
}

// TypeName returns the name of an event type code, "" if the code is not a
// type.
func TypeName(code uint8) string {
	switch code {
	case FaceMatchCode:
		return FaceMatch
	case PlateReadCode:
		return PlateRead
	case CorrectionCode:
		return Correction
	case WatchlistChangeCode:
		return WatchlistChange
	case GalleryChangeCode:
		return GalleryChange
	case ErasureCode:
		return Erasure
	}
	return ""
}

// TypeNames returns every type name in code order, in a new slice.
func TypeNames() []string {
	names := make([]string, 0, MaxTypeCode)
	for c := 1; c <= int(MaxTypeCode); c++ {
		names = append(names, TypeName(uint8(c)))
	}
	return names
}

// DetectionTypeNames returns the detection type names in code order.
func DetectionTypeNames() []string { return []string{FaceMatch, PlateRead} }

// IsDetection reports whether code is a detection type (face_match,
// plate_read): what a camera produced, as opposed to an operator's action
// recorded in the log. Without a type filter, GET /events and /stream
// return detections only.
func IsDetection(code uint8) bool {
	return code == FaceMatchCode || code == PlateReadCode
}

// Expires reports whether retention deletes records of this type when
// their ts_ms is older than the retention period: detections, and
// corrections, which carry their detection's ts_ms and so go with it.
// Watchlist, gallery and erasure events are state, not detections, and
// are never deleted by retention.
func Expires(code uint8) bool {
	return IsDetection(code) || code == CorrectionCode
}

// DetectionMask is the bit set (1<<code) of the detection types, the
// filter of a read without ?type=.
const DetectionMask uint32 = 1<<FaceMatchCode | 1<<PlateReadCode

// TypeEnumMsg is the 422 message for an ingested type that is not a
// detection type.
const TypeEnumMsg = "Input should be '" + FaceMatch + "' or '" + PlateRead + "'"

// QueryTypeEnumMsg is the 422 message for a ?type= that names no type.
const QueryTypeEnumMsg = "Input should be '" + FaceMatch + "', '" + PlateRead + "', '" + Correction + "', '" +
	WatchlistChange + "', '" + GalleryChange + "' or '" + Erasure + "'"

// Watchlist verdicts: plate_read's list_match. A plate on no list has a
// null list_match (in Go, the empty string).
const (
	Whitelist = "whitelist"
	Blacklist = "blacklist"
)

// ListMatchEnumMsg is the 422 message for a list_match that is none of
// Whitelist, Blacklist and null.
const ListMatchEnumMsg = "Input should be '" + Whitelist + "', '" + Blacklist + "' or null"

// Limits of a request and of an event's fields. String lengths count
// characters (Unicode code points), as Python's len does; sizes count
// bytes.
const (
	// MaxItems is the most events one POST /ingest may carry.
	MaxItems = 10_000
	// MaxClusterItems is the most events one POST /ingest may carry in
	// cluster mode: one request is one atomic JetStream batch, which the
	// NATS server caps at this many messages.
	MaxClusterItems = 1000
	// MaxBodyBytes is the largest POST /ingest body.
	MaxBodyBytes = 8 << 20
	// MaxSourceLen bounds frame_source_id, and so a ?source= filter.
	MaxSourceLen = 128
	// MaxPersonNameLen bounds a face_match's person_name.
	MaxPersonNameLen = 256
	// MaxPlateTextLen bounds a plate_read's plate_text.
	MaxPlateTextLen = 32
	// MaxNoteLen is the longest note of a correction or a watchlist entry.
	MaxNoteLen = 1000
	// MaxRegionLen bounds a plate_read's region.
	MaxRegionLen = 64
	// MaxExtraPayloadBytes caps the payload fields a producer may send
	// beyond the known ones (kept for forward compatibility), so one event
	// cannot grow without bound.
	MaxExtraPayloadBytes = 4 << 10
	// MaxSnapshotBytes caps a decoded snapshot JPEG: a crop, not a frame.
	MaxSnapshotBytes = 1 << 20
	// DefaultQueryLimit and MaxQueryLimit are GET /events' limit: the
	// page size when none is given, and the largest page.
	DefaultQueryLimit = 100
	MaxQueryLimit     = 1000
	// RecentWindowSeconds is the span GET /health's recent_events counts:
	// events whose ts_ms lies in the last RecentWindowSeconds seconds.
	RecentWindowSeconds = 300
)

// The API's errors have FastAPI's shapes, which the original service's
// clients parse (httpd/testdata/seed runs them):
// {"detail": "message"} for every error but validation, and for invalid
// parameters or bodies 422 with {"detail": [FieldError, ...]}.

// ErrorBody is the {"detail": "message"} body of an error (HTTPError in
// the OpenAPI document).
type ErrorBody struct {
	Detail string `json:"detail"`
}

// ValidationBody is the body of a 422 answer (HTTPValidationError in the
// OpenAPI document).
type ValidationBody struct {
	Detail []FieldError `json:"detail"`
}

// FieldError is one entry of a 422 detail list (ValidationError in the
// OpenAPI document): where the problem is (Loc: "body", "query" or "path",
// then field names and item indexes), what it is (Msg) and its pydantic
// error type (Type, e.g. "string_too_long").
type FieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// QueryError is the FieldError of query parameter name (loc ["query",
// name]).
func QueryError(name, typ, msg string) FieldError {
	return FieldError{Loc: []any{"query", name}, Msg: msg, Type: typ}
}

// OperatorSource is the frame_source_id of operators' actions that belong
// to no camera (watchlist, gallery and erasure events).
const OperatorSource = "operator"

// NormalizePlate upper-cases plate and drops every character that is not a
// letter or a digit (spaces, dashes, dots): a plate's identity in the
// plate views, so "ab-c 123" and "ABC123" are one plate. OCR confusions
// are not folded (PlateKey does that).
func NormalizePlate(plate string) string {
	var b strings.Builder
	b.Grow(len(plate))
	for _, r := range plate {
		if r < 0x80 {
			switch {
			case r >= 'a' && r <= 'z':
				b.WriteByte(byte(r - 'a' + 'A'))
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				b.WriteByte(byte(r))
			}
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// PlateKey is the watchlist matching key of a plate: NormalizePlate, then
// the OCR confusion classes O/0→0, I/1→1, B/8→8, S/5→5. Two plates match
// a watchlist entry when their keys are equal.
func PlateKey(plate string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case 'O':
			return '0'
		case 'I':
			return '1'
		case 'B':
			return '8'
		case 'S':
			return '5'
		}
		return r
	}, NormalizePlate(plate))
}
