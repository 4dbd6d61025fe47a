package ingest

import (
	"fmt"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/securevision/events/internal/vocab"
)

// The scanner runs over a request body before anything is parsed into a
// tree, for two reasons:
//
//   - Limits hold while reading. fastjson builds a value of about 100 bytes
//     for each JSON value, so "[0,0,0,…]" of 8 MiB became gigabytes before
//     the item limit was checked. The scanner keeps no per-value state: it
//     finds the byte span of each item and counts the item's values, and
//     the decoder then parses one item at a time. Peak memory is the body,
//     the spans (three ints per item) and one item's tree.
//   - Strictness. fastjson accepts numbers with leading zeros and raw
//     control characters in strings; Python's json module, which the
//     original service parsed with, refuses them, and so do we (422).
//
// The grammar is RFC 8259's plus what Python's json module also takes:
// the tokens NaN, Infinity and -Infinity. None of them is a valid value of
// any field: NaN is refused at its field (fastjson parses it as a number),
// Infinity and -Infinity as invalid JSON of their item (fastjson cannot
// parse them), so the answer is a 422 either way. No comments, no trailing commas, strings of valid UTF-8 with
// only the standard escapes. Nesting is bounded by fastjson.MaxDepth, the
// parser's own bound.

// maxItemValues bounds the JSON values of one event. A valid event has
// about twenty besides its extra payload fields, and those are capped at
// vocab.MaxExtraPayloadBytes of canonical JSON, in which a value takes at
// least two bytes ("0,"), so an item with more values is invalid whatever
// they are; it is reported without being parsed.
const maxItemValues = 64 + vocab.MaxExtraPayloadBytes/2

// span is the byte range of one item of a body and how many JSON values
// it holds (counting stops just past maxItemValues).
type span struct {
	start, end int
	values     int
}

// syntaxError is a body that is not JSON; off is the byte offset at which
// the scanner gave up.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

// strPlain marks the bytes that may stand in a JSON string as they are:
// everything but '"', '\\' and the control characters below 0x20. Bytes
// from 0x80 are plain here; UTF-8 validity is checked over the whole body.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanBody checks body and returns its items: the elements of a top-level
// array (array true) or the body itself as one item. It stops with a
// *TooLargeError as soon as the array has more than vocab.MaxItems
// elements. spans is reused.
func scanBody(body []byte, spans []span) (_ []span, array bool, err error) {
	if !utf8.Valid(body) {
		return spans, false, &syntaxError{off: invalidUTF8At(body), msg: "invalid UTF-8"}
	}
	i := skipWS(body, 0)
	if i < len(body) && body[i] == '[' {
		array = true
		i = skipWS(body, i+1)
		if i < len(body) && body[i] == ']' {
			i++
		} else {
			for {
				if len(spans) == vocab.MaxItems {
					return spans, true, &TooLargeError{Msg: fmt.Sprintf("more than %d items in one request", vocab.MaxItems)}
				}
				end, n, err := scanValue(body, i)
				if err != nil {
					return spans, true, err
				}
				spans = append(spans, span{start: i, end: end, values: n})
				i = skipWS(body, end)
				if i < len(body) && body[i] == ',' {
					i = skipWS(body, i+1)
					continue
				}
				if i < len(body) && body[i] == ']' {
					i++
					break
				}
				return spans, true, &syntaxError{off: i, msg: "expecting ',' or ']'"}
			}
		}
	} else {
		end, n, err := scanValue(body, i)
		if err != nil {
			return spans, false, err
		}
		spans = append(spans, span{start: i, end: end, values: n})
		i = end
	}
	if i = skipWS(body, i); i < len(body) {
		return spans, array, &syntaxError{off: i, msg: "extra data after the JSON value"}
	}
	return spans, array, nil
}

// scanLine checks one NDJSON line, which must hold exactly one value.
func scanLine(line []byte) (span, error) {
	if !utf8.Valid(line) {
		return span{}, &syntaxError{off: invalidUTF8At(line), msg: "invalid UTF-8"}
	}
	i := skipWS(line, 0)
	end, n, err := scanValue(line, i)
	if err != nil {
		return span{}, err
	}
	if j := skipWS(line, end); j < len(line) {
		return span{}, &syntaxError{off: j, msg: "extra data after the JSON value"}
	}
	return span{start: i, end: end, values: n}, nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// Container kinds on the scanner's stack.
const (
	inArray  = '['
	inObject = '{'
)

// scanValue scans the JSON value that starts at b[i] and returns the
// offset just past it and the number of values in it (a container counts
// as one plus its members' values; object keys are not values). Counting
// saturates past maxItemValues; scanning goes on to the value's end, in
// constant memory: the stack holds one byte per nesting level.
func scanValue(b []byte, i int) (end, values int, err error) {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return i, values, &syntaxError{off: i, msg: "expecting a value"}
		}
		if values <= maxItemValues {
			values++
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= fastjson.MaxDepth {
				return i, values, &syntaxError{off: i, msg: fmt.Sprintf("nested deeper than %d levels", fastjson.MaxDepth)}
			}
			stack = append(stack, c)
			i = skipWS(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				stack = stack[:len(stack)-1]
				i++
				break // an empty container is a complete value
			}
			if c == '{' {
				if i, err = scanKey(b, i); err != nil {
					return i, values, err
				}
			}
			continue // its first member's value starts at b[i]
		case c == '"':
			if i, err = scanString(b, i); err != nil {
				return i, values, err
			}
		case c == 'N':
			if i, err = scanLiteral(b, i, "NaN"); err != nil {
				return i, values, err
			}
		case c == 'I':
			if i, err = scanLiteral(b, i, "Infinity"); err != nil {
				return i, values, err
			}
		case c == '-' && i+1 < len(b) && b[i+1] == 'I':
			if i, err = scanLiteral(b, i, "-Infinity"); err != nil {
				return i, values, err
			}
		case c == '-' || c >= '0' && c <= '9':
			if i, err = scanNumber(b, i); err != nil {
				return i, values, err
			}
		case c == 't':
			if i, err = scanLiteral(b, i, "true"); err != nil {
				return i, values, err
			}
		case c == 'f':
			if i, err = scanLiteral(b, i, "false"); err != nil {
				return i, values, err
			}
		case c == 'n':
			if i, err = scanLiteral(b, i, "null"); err != nil {
				return i, values, err
			}
		default:
			return i, values, &syntaxError{off: i, msg: "expecting a value"}
		}
		// A value ended at b[i]: close containers until one continues.
		for {
			if len(stack) == 0 {
				return i, values, nil
			}
			i = skipWS(b, i)
			top := stack[len(stack)-1]
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				if top == inObject {
					if i, err = scanKey(b, i); err != nil {
						return i, values, err
					}
				}
				break // the next member's value starts at b[i]
			}
			if i < len(b) && (top == inArray && b[i] == ']' || top == inObject && b[i] == '}') {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if top == inArray {
				return i, values, &syntaxError{off: i, msg: "expecting ',' or ']'"}
			}
			return i, values, &syntaxError{off: i, msg: "expecting ',' or '}'"}
		}
	}
}

// scanKey scans `"key" :` and the white space after it.
func scanKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, &syntaxError{off: i, msg: "expecting a property name enclosed in double quotes"}
	}
	i, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, &syntaxError{off: i, msg: "expecting ':' delimiter"}
	}
	return skipWS(b, i+1), nil
}

// scanString scans the string whose opening quote is b[i].
func scanString(b []byte, i int) (int, error) {
	start := i
	i++
	for {
		// Plain bytes first: a range loop has no bounds checks.
		for _, c := range b[i:] {
			if !strPlain[c] {
				break
			}
			i++
		}
		if i >= len(b) {
			return start, &syntaxError{off: start, msg: "unterminated string"}
		}
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= len(b) {
				return i, &syntaxError{off: i, msg: "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, &syntaxError{off: i, msg: `invalid \uXXXX escape`}
				}
				i += 6
			default:
				return i, &syntaxError{off: i, msg: "invalid escape"}
			}
		default:
			return i, &syntaxError{off: i, msg: "invalid control character in string"}
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// digits returns the offset of the first byte at or after i that is not
// a decimal digit.
func digits(b []byte, i int) int {
	for _, c := range b[i:] {
		if c < '0' || c > '9' {
			break
		}
		i++
	}
	return i
}

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			return i, &syntaxError{off: start, msg: "number with a leading zero"}
		}
	default:
		j := digits(b, i)
		if j == i {
			return i, &syntaxError{off: start, msg: "expecting a value"}
		}
		i = j
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, &syntaxError{off: start, msg: "expecting a digit after '.'"}
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, &syntaxError{off: start, msg: "expecting a digit in the exponent"}
		}
		i = j
	}
	return i, nil
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &syntaxError{off: i, msg: "expecting a value"}
	}
	return i + len(lit), nil
}
