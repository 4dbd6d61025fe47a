package ingest

import (
	"context"
	"encoding/json"

	"github.com/securevision/events/internal/vocab"
)

// TypeFace, TypePlate, MaxItems and MaxBodyBytes are vocab's, under the
// names they had here before vocab existed, for the code that still uses
// them (ingest's metrics, internal/storetest, the import tool, bench's
// store wiring and wsbench), which is being changed elsewhere; new code
// uses vocab's names.
const (
	TypeFace     = vocab.FaceMatch
	TypePlate    = vocab.PlateRead
	MaxItems     = vocab.MaxItems
	MaxBodyBytes = vocab.MaxBodyBytes
)

// BBox is [x1, y1, x2, y2] in frame pixels.
type BBox [4]float64

// Face is the payload of a face_match event.
type Face struct {
	PersonName        string
	Similarity        float64
	BBox              BBox
	EmbeddingDistance *float64
}

// Plate is the payload of a plate_read event. ListMatch is "",
// vocab.Whitelist or vocab.Blacklist; "" is encoded as JSON null.
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

// ListMatcher looks a plate up in the watchlists; it returns "",
// vocab.Whitelist or vocab.Blacklist.
type ListMatcher interface {
	Match(plate string) string
}
