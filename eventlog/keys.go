package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key families (see doc.go).
const (
	famLog      = 'L'
	famSnapshot = 'P'
	famMeta     = 'M'
	// FamIndex and FamSummary are the first bytes reserved for package
	// projections.
	FamIndex   = 'I'
	FamSummary = 'Z'
)

// FormatVersion is the on-disk layout version written to "Mversion".
// Version 2 changed the record header's source length from one byte to
// two (see doc.go); stores of version 1 are read as they are and marked
// version 2 when opened for writing, because the records appended from
// then on carry the new header.
const FormatVersion = 2

// Record header versions: hdrV1 (source length in one byte) is only read,
// hdrV2 is written.
const (
	hdrV1 = 1
	hdrV2 = 2
)

// MaxSourceBytes is the longest source, in bytes, that a record header can
// hold. Append refuses longer ones rather than store a header that lies
// about the bytes that follow it; package ingest checks at compile time
// that its own limit (in characters) fits.
const MaxSourceBytes = 1<<16 - 1

// ErrSourceTooLong is returned by Append for a source longer than
// MaxSourceBytes.
var ErrSourceTooLong = errors.New("eventlog: source longer than the record header allows")

var (
	keyVersion = []byte("Mversion")
	keyLow     = []byte("Mlow")
	keyNext    = []byte("Mnext")
)

// LogKey returns the key of record id.
func LogKey(id uint64) []byte { return idKey(famLog, id) }

// SnapshotKey returns the key of record id's blob.
func SnapshotKey(id uint64) []byte { return idKey(famSnapshot, id) }

func idKey(fam byte, id uint64) []byte {
	k := make([]byte, 9)
	k[0] = fam
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// idFromKey reads the id of an 'L' or 'P' key.
func idFromKey(k []byte) (uint64, bool) {
	if len(k) != 9 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// ErrCorrupt reports a stored value that does not decode.
var ErrCorrupt = errors.New("eventlog: corrupt record")

// hdrV2Len is the fixed part of a version 2 header.
const hdrV2Len = 1 + 1 + 8 + 2

// appendHeader writes the record header to dst. src must be at most
// MaxSourceBytes long (Append checks).
func appendHeader(dst []byte, typ uint8, ts int64, src string) []byte {
	dst = append(dst, hdrV2, typ)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(src)))
	return append(dst, src...)
}

// SplitValue splits a stored record into its header fields and its JSON
// without copying: json aliases v. It reads both header versions.
func SplitValue(v []byte) (typ uint8, ts int64, src []byte, json []byte, err error) {
	var n, off int
	switch {
	case len(v) >= hdrV2Len && v[0] == hdrV2:
		n, off = int(binary.BigEndian.Uint16(v[10:12])), hdrV2Len
	case len(v) >= 11 && v[0] == hdrV1:
		n, off = int(v[10]), 11
	default:
		return 0, 0, nil, nil, ErrCorrupt
	}
	if len(v) < off+n {
		return 0, 0, nil, nil, ErrCorrupt
	}
	return v[1], int64(binary.BigEndian.Uint64(v[2:10])), v[off : off+n], v[off+n:], nil
}

func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: meta value of %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func u64Bytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
