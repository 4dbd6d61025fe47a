package ingest

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// TypeFace and TypePlate are vocab.FaceMatch and vocab.PlateRead under
// the names they had here before vocab existed, for code written against
// them; new code uses vocab's.
const (
	TypeFace  = vocab.FaceMatch
	TypePlate = vocab.PlateRead
)

// Watchlist verdicts for plate_read list_match.
const (
	ListWhite = "whitelist"
	ListBlack = "blacklist"
)

// Limits from CONTRACT §3 and §4.
const (
	MaxItems         = 10_000
	MaxBodyBytes     = 8 << 20
	MaxSourceLen     = 128
	MaxPersonNameLen = 256
	MaxPlateTextLen  = 32
	MaxRegionLen     = 64
	// MaxExtraPayloadBytes caps the unknown payload fields a producer may
	// send (kept for forward compatibility), so one event cannot grow
	// without bound.
	MaxExtraPayloadBytes = 4 << 10
	// MaxSnapshotBytes caps a decoded snapshot JPEG (CONTRACT §7).
	MaxSnapshotBytes = 1 << 20
)

// MaxSourceLen counts characters; the log's record header counts bytes.
// This fails to compile if the longest valid source (every character at
// its longest UTF-8 encoding) could not be stored.
var _ [eventlog.MaxSourceBytes - MaxSourceLen*utf8.UTFMax]struct{}

// BBox is [x1, y1, x2, y2] in frame pixels.
type BBox [4]float64

// Face is the payload of a face_match event.
type Face struct {
	PersonName        string
	Similarity        float64
	BBox              BBox
	EmbeddingDistance *float64
}

// Plate is the payload of a plate_read event. ListMatch is "", ListWhite or
// ListBlack; "" is encoded as JSON null.
type Plate struct {
	PlateText  string
	Confidence float64
	Region     string
	ListMatch  string
	// ListMatchSet records that the producer sent list_match explicitly
	// (null included): only plates without it are looked up in the
	// watchlists.
	ListMatchSet bool
	BBox         *BBox
}

// Event is one validated detection result, ready to append. Exactly one of
// Face and Plate is set, matching Type.
type Event struct {
	Type   string
	TsMs   int64
	Source string
	Face   *Face
	Plate  *Plate
	// Extra holds payload fields this version does not know, compacted,
	// keyed by field name; they are written after the known fields in key
	// order.
	Extra map[string]json.RawMessage
	// Snapshot is an optional JPEG crop, stored beside the event and never
	// part of its JSON.
	Snapshot []byte
}

// Result is the answer to a successful append: ids First..Last, contiguous.
type Result struct {
	Count   int    `json:"count"`
	FirstID uint64 `json:"first_id"`
	LastID  uint64 `json:"last_id"`
}

// Sink is the one append path: HTTP ingest and the camera pipeline both end
// here. Append validates every event, appends all or nothing, and returns
// after the batch is durable.
type Sink interface {
	Append(ctx context.Context, evs []Event) (Result, error)
}

// ListMatcher looks a plate up in the watchlists; it returns "", ListWhite
// or ListBlack.
type ListMatcher interface {
	Match(plate string) string
}
