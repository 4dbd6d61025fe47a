package ingest

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"math"
	"unicode"
	"unicode/utf8"
)

// Validate checks events built in code (the camera pipeline) by the same
// rules as decoded ones (CONTRACT §3).
func Validate(evs []Event) error {
	var verr ValidationError
	for i := range evs {
		validate(&evs[i], []any{"body", i}, &verr)
	}
	if len(verr.Errors) > 0 {
		return &verr
	}
	return nil
}

func validate(ev *Event, prefix []any, verr *ValidationError) {
	switch ev.Type {
	case TypeFace, TypePlate:
	default:
		verr.add(loc(prefix, "type"), "enum", "Input should be 'face_match' or 'plate_read'")
	}
	if ev.TsMs < 0 {
		verr.add(loc(prefix, "ts_ms"), "greater_than", "Input should be greater than 0")
	}
	if n := utf8.RuneCountInString(ev.Source); n < 1 || n > MaxSourceLen || !printable(ev.Source) {
		verr.add(loc(prefix, "frame_source_id"), "string_pattern_mismatch",
			fmt.Sprintf("frame_source_id should be 1 to %d printable characters", MaxSourceLen))
	}
	if len(ev.Snapshot) > 0 {
		if len(ev.Snapshot) > MaxSnapshotBytes {
			verr.add(loc(prefix, "snapshot_jpeg"), "too_long", fmt.Sprintf("snapshot is %d bytes, the limit is %d", len(ev.Snapshot), MaxSnapshotBytes))
		} else if !isJPEG(ev.Snapshot) {
			verr.add(loc(prefix, "snapshot_jpeg"), "value_error", "Value error, snapshot_jpeg is not a JPEG image")
		}
	}
	pl := loc(prefix, "payload")
	switch {
	case ev.Type == TypeFace && ev.Face != nil && ev.Plate == nil:
		f := ev.Face
		checkName(f.PersonName, MaxPersonNameLen, loc(pl, "person_name"), verr)
		checkUnit(f.Similarity, loc(pl, "similarity"), verr)
		checkBBox(f.BBox, loc(pl, "bbox"), verr)
		if d := f.EmbeddingDistance; d != nil && (*d < 0 || math.IsNaN(*d) || math.IsInf(*d, 0)) {
			verr.add(loc(pl, "embedding_distance"), "greater_than_equal", "Input should be greater than or equal to 0")
		}
	case ev.Type == TypePlate && ev.Plate != nil && ev.Face == nil:
		p := ev.Plate
		checkName(p.PlateText, MaxPlateTextLen, loc(pl, "plate_text"), verr)
		checkUnit(p.Confidence, loc(pl, "confidence"), verr)
		if len(p.Region) > MaxRegionLen || !utf8.ValidString(p.Region) || (p.Region != "" && !printable(p.Region)) {
			verr.add(loc(pl, "region"), "string_too_long", fmt.Sprintf("region should be at most %d printable characters", MaxRegionLen))
		}
		switch p.ListMatch {
		case "", ListWhite, ListBlack:
		default:
			verr.add(loc(pl, "list_match"), "enum", "Input should be 'whitelist', 'blacklist' or null")
		}
		if p.BBox != nil {
			checkBBox(*p.BBox, loc(pl, "bbox"), verr)
		}
	case ev.Type == TypeFace || ev.Type == TypePlate:
		verr.add(pl, "missing", "Field required")
	}
}

func checkName(s string, max int, l []any, verr *ValidationError) {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		verr.add(l, "string_too_short", "String should have at least 1 character")
	case n > max:
		verr.add(l, "string_too_long", fmt.Sprintf("String should have at most %d characters", max))
	case !utf8.ValidString(s):
		verr.add(l, "string_unicode", "Input should be a valid string, unable to parse raw data as a unicode string")
	}
}

func checkUnit(f float64, l []any, verr *ValidationError) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		verr.add(l, "finite_number", "Input should be a finite number")
	case f < 0:
		verr.add(l, "greater_than_equal", "Input should be greater than or equal to 0")
	case f > 1:
		verr.add(l, "less_than_equal", "Input should be less than or equal to 1")
	}
}

func checkBBox(b BBox, l []any, verr *ValidationError) {
	for i, f := range b {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			verr.add(loc(l, i), "finite_number", "Input should be a finite number")
			return
		}
	}
	if b[0] > b[2] || b[1] > b[3] {
		verr.add(l, "value_error", "Value error, bbox must satisfy x1 <= x2 and y1 <= y2")
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
