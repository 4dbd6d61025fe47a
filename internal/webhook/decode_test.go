package webhook_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/internal/webhook"
)

// TestDecodeCreate: each bad body is refused with FastAPI's error types;
// good ones decode to what they say.
func TestDecodeCreate(t *testing.T) {
	long := strings.Repeat("é", vocab.MaxSourceLen+1)
	for _, c := range []struct {
		body string
		errs []string // error types, in order; nil: valid
	}{
		{`{"url":"https://example.com/h"}`, nil},
		{`{"url":"http://example.com","types":["face_match","plate_read"],"sources":["a"],"list_match":"whitelist","description":"d","after":0}`, nil},
		{`{"url":"http://example.com","types":null,"sources":null,"list_match":null,"description":null,"after":null}`, nil},
		{`{"url":"http://a.example","url":"http://b.example"}`, nil}, // duplicate key: the last wins
		{``, []string{"missing"}},
		{`   `, []string{"missing"}},
		{`{}`, []string{"missing"}},
		{`[]`, []string{"model_attributes_type"}},
		{`"x"`, []string{"model_attributes_type"}},
		{`{"url":`, []string{"json_invalid"}},
		{`{"url":"a"}x`, []string{"json_invalid"}},
		{`{"url":"http://e.example","after":01}`, []string{"json_invalid"}},  // leading zero
		{"{\"url\":\"http://e\u0001.example\"}", []string{"json_invalid"}},   // raw control character
		{"{\"url\":\"http://e.example/\xff\"}", []string{"json_invalid"}},    // not UTF-8
		{`{"url":"http://e.example","after":NaN}`, []string{"json_invalid"}}, // not JSON
		{`{"url":"http://e.example","typo":1}`, []string{"extra_forbidden"}}, // unknown member
		{`{"url":5}`, []string{"string_type"}},
		{`{"url":"ftp://e.example"}`, []string{"url_scheme"}},
		{`{"url":"file:///etc/passwd"}`, []string{"url_scheme"}},
		{`{"url":"http://"}`, []string{"url_parsing"}},
		{`{"url":"http://e.example:99999/"}`, []string{"url_parsing"}},
		{`{"url":"http://u:p@e.example/"}`, []string{"value_error"}},
		{`{"url":"http://e.example/` + strings.Repeat("a", webhook.MaxURLBytes) + `"}`, []string{"string_too_long"}},
		{`{"url":"http://e.example","types":"face_match"}`, []string{"list_type"}},
		{`{"url":"http://e.example","types":["face"]}`, []string{"enum"}},
		{`{"url":"http://e.example","types":[1]}`, []string{"string_type"}},
		{`{"url":"http://e.example","sources":[""]}`, []string{"string_too_long"}},
		{`{"url":"http://e.example","sources":["` + long + `"]}`, []string{"string_too_long"}},
		{`{"url":"http://e.example","list_match":"grey"}`, []string{"enum"}},
		{`{"url":"http://e.example","description":"` + strings.Repeat("x", webhook.MaxDescriptionLen+1) + `"}`, []string{"string_too_long"}},
		{`{"url":"http://e.example","after":-1}`, []string{"greater_than_equal"}},
		{`{"url":"http://e.example","after":1.5}`, []string{"int_type"}},
		{`{"url":"http://e.example","after":1e3}`, []string{"int_type"}},
		{`{"url":"http://e.example","after":"5"}`, []string{"int_type"}},
		{`{"url":"http://e.example","after":99999999999999999999999}`, []string{"int_type"}},
		{`{"after":-1,"typo":true,"types":["x"]}`, []string{"greater_than_equal", "enum", "extra_forbidden", "missing"}},
	} {
		got := webhook.DecodeCreateErrs([]byte(c.body))
		if !slices.Equal(got, c.errs) {
			t.Errorf("%.80s: errors %v, want %v", c.body, got, c.errs)
		}
	}
	u, types, sources, lm, desc, after, n := webhook.DecodeCreate([]byte(
		`{"url":"HTTPS://Example.com:8443/p?q=1","types":[],"sources":["cam 1","cam2"],"list_match":"blacklist","description":"Ä","after":42}`))
	if n != 0 || u != "HTTPS://Example.com:8443/p?q=1" || types != nil || !slices.Equal(sources, []string{"cam 1", "cam2"}) ||
		lm != "blacklist" || desc != "Ä" || after == nil || *after != 42 {
		t.Fatalf("decoded %q %v %v %q %q %v (%d errors)", u, types, sources, lm, desc, after, n)
	}
}

func TestDecodeReplay(t *testing.T) {
	for body, want := range map[string]int{
		`{"after":7}`: 0, `{"after":0}`: 0, `{}`: 1, `{"after":null}`: 1, `{"after":-3}`: 1,
		`{"after":1,"x":2}`: 1, `[1]`: 1, ``: 1, `{"after":7.0}`: 1,
	} {
		after, n := webhook.DecodeReplay([]byte(body))
		if n != want || (want == 0 && body == `{"after":7}` && after != 7) {
			t.Errorf("%s: after %d, %d errors, want %d", body, after, n, want)
		}
	}
}

// FuzzCreateBody: no body makes the decoder panic; every accepted body
// keeps the limits, names known types and an http(s) URL, and decodes
// again to the same request once re-encoded.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://example.com/h"}`,
		`{"url":"http://example.com","types":["face_match","plate_read"],"sources":["a"],"list_match":"whitelist","description":"d","after":0}`,
		`{"url":"http://[::1]:80/x","types":null,"after":18446744073709551615}`,
		`{"url":"http://e.example","after":01}`,
		"{\"url\":\"http://e.example/\xff\"}",
		`{"url":"http://e.example","sources":["` + strings.Repeat("é", 129) + `"]}`,
		`[{"url":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, types, sources, lm, desc, after, n := webhook.DecodeCreate(b)
		errTypes := webhook.DecodeCreateErrs(b)
		if (n == 0) != (len(errTypes) == 0) {
			t.Fatalf("decoder not deterministic: %d then %d errors", n, len(errTypes))
		}
		if n > 0 {
			return
		}
		lu := strings.ToLower(u)
		if !strings.HasPrefix(lu, "http://") && !strings.HasPrefix(lu, "https://") || len(u) > webhook.MaxURLBytes {
			t.Fatalf("accepted URL %q", u)
		}
		for _, ty := range types {
			if vocab.TypeCode(ty) == 0 {
				t.Fatalf("accepted type %q", ty)
			}
		}
		for _, s := range sources {
			if c := utf8.RuneCountInString(s); c < 1 || c > vocab.MaxSourceLen {
				t.Fatalf("accepted source of %d characters", c)
			}
		}
		if lm != "" && lm != vocab.Whitelist && lm != vocab.Blacklist {
			t.Fatalf("accepted list_match %q", lm)
		}
		if utf8.RuneCountInString(desc) > webhook.MaxDescriptionLen || !utf8.ValidString(desc) {
			t.Fatalf("accepted description of %d characters", utf8.RuneCountInString(desc))
		}
		again := map[string]any{"url": u, "types": types, "sources": sources, "description": desc}
		if lm != "" {
			again["list_match"] = lm
		}
		if after != nil {
			again["after"] = *after
		}
		b2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		u2, types2, sources2, lm2, desc2, after2, n2 := webhook.DecodeCreate(b2)
		if n2 != 0 || u2 != u || !slices.Equal(types2, types) || !slices.Equal(sources2, sources) || lm2 != lm || desc2 != desc ||
			(after == nil) != (after2 == nil) || after != nil && *after != *after2 {
			t.Fatalf("re-encoded body %s decodes differently", b2)
		}
	})
}
