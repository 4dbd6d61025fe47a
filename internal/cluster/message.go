package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/idempotency"
)

// Message bodies (version 1). The first byte is the kind; integers are
// big-endian.
//
//	event:  'e' flags:u8 created_ms:u64 type:u8 ts_ms:u64
//	        srclen:u16 source  headlen:u32 head  taillen:u32 tail
//	        bloblen:u32 blob
//	        [flags&flagRequest: count:u32 keylen:u8 key hash:32]
//	marker: 'r' cutoff_ms:u64 originlen:u8 origin
//
// head and tail are eventlog.Record's JSON parts (without id and
// created_at). The request trailer rides on the first message of a
// request: count is the request's size (its events are the count
// sequences from this one: a batch is contiguous); keylen 0 means no
// Idempotency-Key. Anyone who can publish on the stream's subjects can
// write a body, so decode checks every length against what is left.
const (
	kindEvent  = 'e'
	kindMarker = 'r'

	flagRequest = 1
)

// errBadMessage reports a body decode refuses.
var errBadMessage = errors.New("cluster: malformed stream message")

// requestInfo is the trailer of a request's first message.
type requestInfo struct {
	count uint32
	key   string
	hash  idempotency.BodyHash
}

// event is a decoded event message. Its slices alias the body.
type event struct {
	createdMs int64
	rec       eventlog.Record
	req       *requestInfo
}

// eventSize is the encoded size of rec's message without a trailer.
func eventSize(rec *eventlog.Record) int {
	return 1 + 1 + 8 + 1 + 8 + 2 + len(rec.Source) + 4 + len(rec.Head) + 4 + len(rec.Tail) + 4 + len(rec.Blob)
}

const trailerMax = 4 + 1 + idempotency.MaxKeyLen + len(idempotency.BodyHash{})

// appendEvent encodes one event message. req may be nil. rec.Source fits
// a u16 (eventlog refuses longer ones; Append checks first) and key is at
// most idempotency.MaxKeyLen bytes.
func appendEvent(b []byte, createdMs int64, rec *eventlog.Record, req *requestInfo) []byte {
	flags := byte(0)
	if req != nil {
		flags = flagRequest
	}
	b = append(b, kindEvent, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(createdMs))
	b = append(b, rec.Type)
	b = binary.BigEndian.AppendUint64(b, uint64(rec.TsMs))
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.Source)))
	b = append(b, rec.Source...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec.Head)))
	b = append(b, rec.Head...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec.Tail)))
	b = append(b, rec.Tail...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec.Blob)))
	b = append(b, rec.Blob...)
	if req != nil {
		b = binary.BigEndian.AppendUint32(b, req.count)
		b = append(b, byte(len(req.key)))
		b = append(b, req.key...)
		b = append(b, req.hash[:]...)
	}
	return b
}

// appendMarker encodes a retention marker.
func appendMarker(b []byte, cutoffMs int64, origin string) []byte {
	b = append(b, kindMarker)
	b = binary.BigEndian.AppendUint64(b, uint64(cutoffMs))
	b = append(b, byte(len(origin)))
	return append(b, origin...)
}

// reader reads a body front to back; a short read sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() int {
	if v := r.take(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) u32() int {
	if v := r.take(4); v != nil {
		return int(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// lenBytes reads a u32 length and that many bytes.
func (r *reader) lenBytes() []byte {
	n := r.u32()
	return r.take(n)
}

// decodeEvent decodes an event message body.
func decodeEvent(body []byte) (event, error) {
	r := reader{b: body}
	if r.u8() != kindEvent {
		return event{}, fmt.Errorf("%w: not an event", errBadMessage)
	}
	flags := r.u8()
	var e event
	e.createdMs = int64(r.u64())
	e.rec.Type = r.u8()
	e.rec.TsMs = int64(r.u64())
	e.rec.Source = string(r.take(r.u16()))
	e.rec.Head = r.lenBytes()
	e.rec.Tail = r.lenBytes()
	e.rec.Blob = r.lenBytes()
	if len(e.rec.Blob) == 0 {
		e.rec.Blob = nil
	}
	if flags&flagRequest != 0 {
		req := &requestInfo{count: uint32(r.u32())}
		req.key = string(r.take(int(r.u8())))
		copy(req.hash[:], r.take(len(req.hash)))
		e.req = req
		if req.count == 0 {
			r.bad = true
		}
	}
	if r.bad || len(r.b) != 0 || flags&^flagRequest != 0 || e.createdMs < 0 {
		return event{}, fmt.Errorf("%w: event body", errBadMessage)
	}
	return e, nil
}

// marker is a decoded retention marker.
type marker struct {
	cutoffMs int64
	origin   string
}

// decodeMarker decodes a retention marker body.
func decodeMarker(body []byte) (marker, error) {
	r := reader{b: body}
	if r.u8() != kindMarker {
		return marker{}, fmt.Errorf("%w: not a marker", errBadMessage)
	}
	m := marker{cutoffMs: int64(r.u64())}
	m.origin = string(r.take(int(r.u8())))
	if r.bad || len(r.b) != 0 {
		return marker{}, fmt.Errorf("%w: marker body", errBadMessage)
	}
	return m, nil
}
