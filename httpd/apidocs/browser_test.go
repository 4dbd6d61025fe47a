package apidocs

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/vocab"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// chromiumTimeout bounds one headless run. A page renders in a small part
// of it (--virtual-time-budget fast-forwards timers); the margin is for a
// loaded machine.
const chromiumTimeout = 40 * time.Second

// chromium loads url in headless Chromium and returns what it printed on
// stdout (the DOM with --dump-dom) and the page's console messages, which
// include every Content-Security-Policy violation.
func chromium(t *testing.T, url string, extra ...string) (stdout []byte, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), chromiumTimeout)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=10000",
	}, extra...)
	cmd := exec.CommandContext(ctx, chromiumPath, append(args, url)...)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, tail(errOut.String(), 2000))
	}
	for line := range strings.Lines(errOut.String()) {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, strings.TrimSpace(line))
		}
	}
	return out.Bytes(), console
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// cspViolations returns the console lines reporting a CSP violation, except
// the one the policy exists for: ReDoc's attempt to fetch its vendor logo
// from cdn.redoc.ly, which is blocked and then hidden by ReDoc.
func cspViolations(console []string) []string {
	var v []string
	for _, l := range console {
		if strings.Contains(l, "Content Security Policy") &&
			!strings.Contains(l, "'https://cdn.redoc.ly/redoc/logo-mini.svg'") {
			v = append(v, l)
		}
	}
	return v
}

// TestBrowser renders /docs and /redoc in headless Chromium, under their
// real CSP, and checks that the endpoint list made it into the DOM: the
// bundles loaded, ran, fetched /openapi.json and rendered it, with no CSP
// violation. Set APIDOCS_SCREENSHOT=/path.png to also save a screenshot of
// /docs.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("real-browser check skipped: %s not found (apt-get install chromium): %v", chromiumPath, err)
	}
	if testing.Short() {
		t.Skip("real-browser check skipped in -short mode")
	}
	srv := httptest.NewServer(newTestRouter(t))
	t.Cleanup(srv.Close)

	oaPath := func(op Operation) string {
		return regexp.MustCompile(`:(\w+)`).ReplaceAllString(op.Path, "{$1}")
	}

	t.Run("docs", func(t *testing.T) {
		dom, console := chromium(t, srv.URL+DocsPath, "--dump-dom")
		for _, op := range Operations() {
			want := fmt.Sprintf(`data-path="%s"`, oaPath(op))
			if !bytes.Contains(dom, []byte(want)) {
				t.Errorf("Swagger UI did not render %s %s", op.Method, oaPath(op))
			}
		}
		if !bytes.Contains(dom, []byte(vocab.ServiceName)) {
			t.Errorf("Swagger UI did not render the title")
		}
		if v := cspViolations(console); len(v) > 0 {
			t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
		}
		if t.Failed() {
			t.Logf("DOM: %s\nconsole:\n%s", tail(string(dom), 3000), strings.Join(console, "\n"))
		}
	})

	// An expanded operation (deep link) renders parameters, headers, the
	// schemas and highlighted examples: more of Swagger UI runs under the
	// CSP.
	t.Run("docs-expanded", func(t *testing.T) {
		dom, console := chromium(t, srv.URL+DocsPath+"#/events/list_events", "--dump-dom")
		for _, want := range []string{"X-Next-Cursor", `data-param-name="after"`, "HTTPValidationError"} {
			if !bytes.Contains(dom, []byte(want)) {
				t.Errorf("expanded GET /events lacks %q", want)
			}
		}
		if v := cspViolations(console); len(v) > 0 {
			t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
		}
	})

	t.Run("redoc", func(t *testing.T) {
		dom, console := chromium(t, srv.URL+RedocPath, "--dump-dom")
		for _, op := range Operations() {
			m := strings.ToLower(op.Method)
			re := regexp.MustCompile(fmt.Sprintf(`http-verb %s">%s</span><span[^>]*>%s</span>`,
				m, m, regexp.QuoteMeta(oaPath(op))))
			if !re.Match(dom) {
				t.Errorf("ReDoc did not render %s %s", op.Method, oaPath(op))
			}
		}
		if v := cspViolations(console); len(v) > 0 {
			t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
		}
		if t.Failed() {
			t.Logf("DOM: %s\nconsole:\n%s", tail(string(dom), 3000), strings.Join(console, "\n"))
		}
	})

	if shot := os.Getenv("APIDOCS_SCREENSHOT"); shot != "" {
		t.Run("screenshot", func(t *testing.T) {
			chromium(t, srv.URL+DocsPath, "--screenshot="+shot, "--window-size=1280,1400", "--hide-scrollbars")
			if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
				t.Fatalf("no screenshot at %s: %v", shot, err)
			}
			t.Logf("screenshot of /docs: %s", shot)
		})
	}
}
