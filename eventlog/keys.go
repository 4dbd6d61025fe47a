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
const FormatVersion = 1

const hdrVersion = 1

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

// appendHeader writes the record header to dst.
func appendHeader(dst []byte, typ uint8, ts int64, src string) []byte {
	dst = append(dst, hdrVersion, typ)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = append(dst, byte(len(src)))
	return append(dst, src...)
}

// SplitValue splits a stored record into its header fields and its JSON
// without copying: json aliases v.
func SplitValue(v []byte) (typ uint8, ts int64, src []byte, json []byte, err error) {
	if len(v) < 11 || v[0] != hdrVersion {
		return 0, 0, nil, nil, ErrCorrupt
	}
	n := int(v[10])
	if len(v) < 11+n {
		return 0, 0, nil, nil, ErrCorrupt
	}
	return v[1], int64(binary.BigEndian.Uint64(v[2:10])), v[11 : 11+n], v[11+n:], nil
}

func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: meta value of %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func u64Bytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
