package projections

import (
	"strings"
	"unicode"
)

// NormalizePlate is a plate's identity in the plate views: upper case,
// letters and digits only (spaces, dashes and dots dropped), so that
// "ab-c 123" and "ABC123" are one plate. OCR confusions (O/0, ...) are
// not folded here: they are different plates that search finds at half
// an edit.
func NormalizePlate(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}
