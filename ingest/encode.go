package ingest

import (
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// appendHead writes the JSON members between "id" and "created_at":
// "type":…,"ts_ms":…,"frame_source_id":…
func appendHead(b []byte, ev *Event) []byte {
	b = append(b, `"type":"`...)
	b = append(b, ev.Type...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, ev.TsMs, 10)
	b = append(b, `,"frame_source_id":`...)
	return appendString(b, ev.Source)
}

// appendTail writes "payload":{…} with the known fields in the original
// service's order, then the extra fields in key order.
func appendTail(b []byte, ev *Event) []byte {
	b = append(b, `"payload":{`...)
	if f := ev.Face; f != nil {
		b = append(b, `"person_name":`...)
		b = appendString(b, f.PersonName)
		b = append(b, `,"similarity":`...)
		b = appendFloat(b, f.Similarity)
		b = append(b, `,"bbox":`...)
		b = appendBBox(b, f.BBox)
		if f.EmbeddingDistance != nil {
			b = append(b, `,"embedding_distance":`...)
			b = appendFloat(b, *f.EmbeddingDistance)
		}
	} else if p := ev.Plate; p != nil {
		b = append(b, `"plate_text":`...)
		b = appendString(b, p.PlateText)
		b = append(b, `,"confidence":`...)
		b = appendFloat(b, p.Confidence)
		b = append(b, `,"region":`...)
		b = appendString(b, p.Region)
		b = append(b, `,"list_match":`...)
		if p.ListMatch == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, p.ListMatch)
		}
		if p.BBox != nil {
			b = append(b, `,"bbox":`...)
			b = appendBBox(b, *p.BBox)
		}
	}
	if len(ev.Extra) > 0 {
		keys := make([]string, 0, len(ev.Extra))
		for k := range ev.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b = append(b, ',')
			b = appendString(b, k)
			b = append(b, ':')
			b = append(b, ev.Extra[k]...)
		}
	}
	return append(b, '}')
}

func appendBBox(b []byte, bb BBox) []byte {
	b = append(b, '[')
	for i, f := range bb {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, f)
	}
	return append(b, ']')
}

// appendFloat formats like encoding/json (ES6 number formatting): integral
// values print without a fraction, as the original service prints bbox
// pixels ([100,150,250,300]).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs < 1e15 && f == math.Trunc(f) && !(f == 0 && math.Signbit(f)) {
		// Integral (bbox pixels): the same digits as the shortest float
		// form, without its search. -0 keeps the general path ("-0").
		return strconv.AppendInt(b, int64(f), 10)
	}
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string. s is valid UTF-8 (validated).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
