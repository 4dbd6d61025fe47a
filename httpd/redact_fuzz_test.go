package httpd

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedactQuery: whatever the query, each part of the redacted one
// (split at '&' and ';', as RedactQuery splits) either decodes to a key
// that cannot carry a token, with its value as sent, or shows no value at
// all: auth and every other reader of the query find nothing but REDACTED
// under a token-like key.
func FuzzRedactQuery(f *testing.F) {
	for _, s := range []string{
		"", "token=abc", "%74oken=abc", "tok%65n=%61%62", "TOKEN=a&Token=b", "access_token=x",
		"a=1;token=x", "token=x%zz", "%zz=1&token=x", "tokenx", "token", "&&=&", "a=%zz", "token==", "t%6Fken=1;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := RedactQuery(q)
		split := func(s string) []string {
			return strings.FieldsFunc(s, func(r rune) bool { return r == '&' || r == ';' })
		}
		in, got := split(q), split(out)
		if len(in) != len(got) {
			t.Fatalf("RedactQuery(%q) = %q: %d parts, want %d", q, out, len(got), len(in))
		}
		for i, p := range got {
			if p == "REDACTED" {
				continue
			}
			k, v, _ := strings.Cut(p, "=")
			key, err := url.QueryUnescape(k)
			if err != nil {
				t.Fatalf("RedactQuery(%q) = %q: part %q kept with an undecodable key", q, out, p)
			}
			if tokenKey(key) && v != "REDACTED" {
				t.Fatalf("RedactQuery(%q) = %q: token-like key %q kept its value", q, out, key)
			}
			if !tokenKey(key) && p != in[i] {
				t.Fatalf("RedactQuery(%q) = %q: part %q changed to %q", q, out, in[i], p)
			}
		}
		// What auth would read is gone.
		v, _ := url.ParseQuery(out)
		for _, tok := range v["token"] {
			if tok != "REDACTED" {
				t.Fatalf("RedactQuery(%q) = %q: token %q still readable", q, out, tok)
			}
		}
	})
}
