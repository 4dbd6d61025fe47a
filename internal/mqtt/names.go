package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeID maps a camera id (an event's frame_source_id, any printable
// Unicode up to 128 characters) to a string that is at once a valid MQTT
// topic level and a valid Home Assistant node and object id: ASCII
// letters, digits and '_' stay as they are; every other byte of the id's
// UTF-8 encoding, '-' included, becomes '-' followed by its two lowercase
// hex digits. So "camera_driveway" stays "camera_driveway", "front door"
// becomes "front-20door" and "cam-1" becomes "cam-2d1".
//
// The mapping is injective (two different ids never share an escaped
// form, so two cameras never share a topic or a device): '-' appears in
// the output only as the start of an escape, which is always exactly
// three bytes, so UnescapeID reads every escaped form back to the one id
// it came from.
func EscapeID(id string) string {
	n := 0
	for i := 0; i < len(id); i++ {
		if !plain(id[i]) {
			n++
		}
	}
	if n == 0 {
		return id
	}
	const hexdigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(id) + 2*n)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('-')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&0xf])
	}
	return b.String()
}

// UnescapeID inverts EscapeID; it fails on a string EscapeID cannot
// produce.
func UnescapeID(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '-' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			v := hi<<4 | lo
			if !ok1 || !ok2 || plain(v) {
				return "", fmt.Errorf("mqtt: bad escape %q in %q", s[i:i+3], s)
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("mqtt: byte %q at %d of %q is not escaped", c, i, s)
		}
	}
	return b.String(), nil
}

// plain reports whether c stands for itself in an escaped id.
func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// unhex reads one lowercase hex digit (EscapeID writes only lowercase, so
// that each id has one escaped form).
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// maxPrefixBytes bounds a topic prefix: the topics built on it (prefix,
// an escaped camera id of at most 128 × 4 × 3 bytes, a type) stay far
// below MQTT's limit of 65,535 bytes.
const maxPrefixBytes = 1024

// ValidatePrefix checks a topic prefix or discovery prefix: one or more
// topic levels separated by '/', in UTF-8, with no wildcard ('+', '#'),
// no NUL, no empty level, and not starting with '$' (the brokers'
// reserved topics, such as $SYS, which clients may not publish to).
func ValidatePrefix(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case len(p) > maxPrefixBytes:
		return fmt.Errorf("longer than %d bytes", maxPrefixBytes)
	case !utf8.ValidString(p):
		return errors.New("not valid UTF-8")
	case strings.ContainsAny(p, "+#\x00"):
		return errors.New("contains a wildcard (+ or #) or NUL")
	case p[0] == '$':
		return errors.New("starts with $ (reserved for the broker)")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//"):
		return errors.New("has an empty topic level (a leading, trailing or double /)")
	}
	for _, r := range p {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return errors.New("contains a control character")
		}
	}
	return nil
}
