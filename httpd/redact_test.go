package httpd_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/testbin"
)

// TestTokenNeverLogged: with DEBUG access logs on, no form of the token
// (right or wrong; raw, percent-encoded or base64) reaches the logs,
// whichever way a client spells the query key auth reads, and also when
// the query does not parse.
func TestTokenNeverLogged(t *testing.T) {
	// '+', '/' and '=' make the percent-encoded form differ from the raw one.
	const token = "s3cr3t+T0k/en=Zz9"
	const wrong = "wr0ng+Gu3ss/x=Qq7"
	var logBuf testbin.LockedBuffer
	e := newEnv(t, func(o *httpd.Options) {
		o.AuthToken = token
		o.Stream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
		o.Logger = newDebugLogger(&logBuf)
	})
	pct := func(s string) string { // every byte percent-encoded
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	}
	q := url.QueryEscape
	requests := []struct {
		path string
		hdr  []string
		code int // 0: any
	}{
		{"/stream?token=" + q(token), nil, 299},
		{"/stream?%74oken=" + q(token), nil, 299}, // auth decodes the key
		{"/stream?tok%65n=" + pct(token), nil, 299},
		{"/stream?" + pct("token") + "=" + pct(token), nil, 299},
		{"/stream?after=0&token=" + q(token) + "&type=face_match", nil, 299},
		{"/stream?%zz=1&token=" + q(token), nil, 299}, // a bad pair before it does not stop auth
		{"/stream?token=" + q(wrong), nil, 401},
		{"/stream?%74oken=" + q(wrong), nil, 401},
		{"/stream?TOKEN=" + q(token), nil, 0},
		{"/stream?Token=" + pct(token), nil, 0},
		{"/stream?access_token=" + q(token), nil, 0},
		{"/stream?token=" + q(token) + ";after=0", nil, 0},
		{"/stream?after=0;token=" + q(token), nil, 0},
		{"/stream?token=" + q(token) + "%zz", nil, 0},
		{"/stream?%zztoken=" + q(token), nil, 0},
		{"/stream?tok%zzen=" + q(token), nil, 0},
		{"/stream?token" + q(token), nil, 0},
		{"/stream?token=" + token, nil, 0}, // unencoded: '+' decodes to a space
		{"/events?token=" + q(token), nil, 401},
		{"/events", []string{"Authorization", "Bearer " + token}, 200},
		{"/events", []string{"Authorization", "Bearer " + wrong}, 401},
		{"/events", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+token))}, 401},
		{"/stream", []string{"Authorization", "Bearer " + token}, 299},
	}
	for _, rq := range requests {
		r := e.do(t, "GET", rq.path, "", rq.hdr...)
		if rq.code != 0 && r.code != rq.code {
			t.Errorf("GET %s: %d, want %d", rq.path, r.code, rq.code)
		}
	}
	logs := logBuf.String()
	if n := strings.Count(logs, `msg="http request"`); n != len(requests) {
		t.Fatalf("%d access log lines for %d requests: the check below would prove little\n%s", n, len(requests), logs)
	}
	lower := strings.ToLower(logs)
	for _, secret := range []string{token, wrong} {
		forms := map[string]string{
			"raw":                 secret,
			"query-escaped":       url.QueryEscape(secret),
			"path-escaped":        url.PathEscape(secret),
			"percent-encoded":     pct(secret),
			"'+' as space":        strings.ReplaceAll(secret, "+", " "),
			"base64":              base64.StdEncoding.EncodeToString([]byte(secret)),
			"base64url":           base64.RawURLEncoding.EncodeToString([]byte(secret)),
			"base64 of u:token":   base64.StdEncoding.EncodeToString([]byte("u:" + secret)),
			"the part before '+'": secret[:strings.IndexByte(secret, '+')],
		}
		for name, f := range forms {
			if i := strings.Index(lower, strings.ToLower(f)); i >= 0 {
				t.Errorf("%s form of %q in the logs: …%s…", name, secret, logs[max(0, i-150):min(len(logs), i+60)])
			}
		}
	}
	if !strings.Contains(logs, "token=REDACTED") || !strings.Contains(logs, "%74oken=REDACTED") {
		t.Errorf("access log does not show where a token was redacted:\n%s", logs)
	}
}

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"after=0&type=face_match":   "after=0&type=face_match",
		"token=abc":                 "token=REDACTED",
		"after=1&token=abc&x=2":     "after=1&token=REDACTED&x=2",
		"%74oken=abc":               "%74oken=REDACTED",
		"%74%6F%6B%65%6E=abc":       "%74%6F%6B%65%6E=REDACTED",
		"TOKEN=abc&Token=def":       "TOKEN=REDACTED&Token=REDACTED",
		"access_token=abc":          "access_token=REDACTED",
		"token=a&token=b":           "token=REDACTED&token=REDACTED",
		"token=":                    "token=REDACTED",
		"token=a=b":                 "token=REDACTED",
		"token=abc;after=0":         "token=REDACTED;after=0",
		"after=0;token=abc":         "after=0;token=REDACTED",
		"token=ab%zz":               "token=REDACTED",
		"%zz=abc&after=1":           "REDACTED&after=1",
		"tok%zzen=abc":              "REDACTED",
		"tokenabc":                  "REDACTED",
		"source=cam%20one&limit=10": "source=cam%20one&limit=10",
		"source=50%":                "source=50%",
		"&&token=x&":                "&&token=REDACTED&",
	} {
		if got := httpd.RedactQuery(in); got != want {
			t.Errorf("RedactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
