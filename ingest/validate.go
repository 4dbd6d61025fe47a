package ingest

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// vocab.MaxSourceLen counts characters; the log's record header counts
// bytes. This fails to compile if the longest valid source (every
// character at its longest UTF-8 encoding) could not be stored.
var _ [eventlog.MaxSourceBytes - vocab.MaxSourceLen*utf8.UTFMax]struct{}

// Validate checks events built in code (the camera pipeline) by the same
// rules as decoded ones, so that both kinds of producer store the same
// events.
func Validate(evs []Event) error {
	var verr ValidationError
	for i := range evs {
		validate(&evs[i], path{item: i}, &verr)
	}
	if len(verr.Errors) > 0 {
		return &verr
	}
	return nil
}

func validate(ev *Event, p path, verr *ValidationError) {
	if vocab.DetectionCode(ev.Type) == 0 {
		verr.at(p, "enum", vocab.TypeEnumMsg, "type")
	}
	if ev.TsMs < 0 {
		verr.at(p, "greater_than", "Input should be greater than 0", "ts_ms")
	}
	if n := utf8.RuneCountInString(ev.Source); n < 1 || n > vocab.MaxSourceLen || !printable(ev.Source) {
		verr.at(p, "string_pattern_mismatch", fmt.Sprintf("frame_source_id should be 1 to %d printable characters", vocab.MaxSourceLen), "frame_source_id")
	}
	if len(ev.Snapshot) > 0 {
		if len(ev.Snapshot) > vocab.MaxSnapshotBytes {
			verr.at(p, "too_long", fmt.Sprintf("snapshot is %d bytes, the limit is %d", len(ev.Snapshot), vocab.MaxSnapshotBytes), "snapshot_jpeg")
		} else if !isJPEG(ev.Snapshot) {
			verr.at(p, "value_error", "Value error, snapshot_jpeg is not a JPEG image", "snapshot_jpeg")
		}
	}
	pl := path{item: p.item, payload: true}
	switch {
	case ev.Type == vocab.FaceMatch && ev.Face != nil && ev.Plate == nil:
		f := ev.Face
		checkName(f.PersonName, vocab.MaxPersonNameLen, verr, pl, "person_name")
		checkUnit(f.Similarity, verr, pl, "similarity")
		checkBBox(f.BBox, verr, pl, "bbox")
		if d := f.EmbeddingDistance; d != nil && (*d < 0 || math.IsNaN(*d) || math.IsInf(*d, 0)) {
			verr.at(pl, "greater_than_equal", "Input should be greater than or equal to 0", "embedding_distance")
		}
	case ev.Type == vocab.PlateRead && ev.Plate != nil && ev.Face == nil:
		pp := ev.Plate
		checkName(pp.PlateText, vocab.MaxPlateTextLen, verr, pl, "plate_text")
		checkUnit(pp.Confidence, verr, pl, "confidence")
		if utf8.RuneCountInString(pp.Region) > vocab.MaxRegionLen || !utf8.ValidString(pp.Region) || (pp.Region != "" && !printable(pp.Region)) {
			verr.at(pl, "string_too_long", fmt.Sprintf("region should be at most %d printable characters", vocab.MaxRegionLen), "region")
		}
		switch pp.ListMatch {
		case "", vocab.Whitelist, vocab.Blacklist:
		default:
			verr.at(pl, "enum", vocab.ListMatchEnumMsg, "list_match")
		}
		if pp.BBox != nil {
			checkBBox(*pp.BBox, verr, pl, "bbox")
		}
	case vocab.DetectionCode(ev.Type) != 0:
		verr.at(p, "missing", "Field required", "payload")
	}
}

func checkName(s string, max int, verr *ValidationError, p path, field string) {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		verr.at(p, "string_too_short", "String should have at least 1 character", field)
	case n > max:
		verr.at(p, "string_too_long", fmt.Sprintf("String should have at most %d characters", max), field)
	case !utf8.ValidString(s):
		verr.at(p, "string_unicode", "Input should be a valid string, unable to parse raw data as a unicode string", field)
	}
}

func checkUnit(f float64, verr *ValidationError, p path, field string) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		verr.at(p, "finite_number", "Input should be a finite number", field)
	case f < 0:
		verr.at(p, "greater_than_equal", "Input should be greater than or equal to 0", field)
	case f > 1:
		verr.at(p, "less_than_equal", "Input should be less than or equal to 1", field)
	}
}

func checkBBox(b BBox, verr *ValidationError, p path, field string) {
	for i, f := range b {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			verr.at(p, "finite_number", "Input should be a finite number", field, i)
			return
		}
	}
	if b[0] > b[2] || b[1] > b[3] {
		verr.at(p, "value_error", "Value error, bbox must satisfy x1 <= x2 and y1 <= y2", field)
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// isJPEG checks the SOI marker and that the header decodes.
func isJPEG(b []byte) bool {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return false
	}
	_, err := jpeg.DecodeConfig(bytes.NewReader(b))
	return err == nil
}
