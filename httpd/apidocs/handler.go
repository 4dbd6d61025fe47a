package apidocs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/securevision/events/internal/vocab"
)

// Paths this package serves.
const (
	DocsPath   = "/docs"
	RedocPath  = "/redoc"
	SpecPath   = "/openapi.json"
	AssetsPath = "/docs/assets/"
)

// Content-Security-Policies of the two pages: everything same-origin, no
// inline or eval'd script. The exceptions are what each bundle genuinely
// needs, found by loading the pages under a bare "default-src 'self'" in
// Chromium (TestBrowser keeps checking that no directive is violated):
//   - /docs, img-src data: — Swagger UI's CSS draws its icons as data: SVGs;
//     blob: — it shows image responses (snapshot.jpg) through blob URLs.
//   - /redoc, style-src 'unsafe-inline' — ReDoc (styled-components) inserts
//     <style> elements at run time and does not render without them;
//     img-src data: — its icons; worker-src blob: — its search index runs in
//     a Worker made from a Blob.
//
// ReDoc's sidebar also tries to load its vendor's logo from
// cdn.redoc.ly; the policy blocks that (on purpose: no external requests)
// and ReDoc then hides the image.
const (
	docsCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src 'self'; worker-src 'none'; object-src 'none'; base-uri 'self'; form-action 'self'; " +
		"frame-ancestors 'self'"
	redocCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"connect-src 'self'; worker-src blob:; object-src 'none'; base-uri 'self'; form-action 'self'; " +
		"frame-ancestors 'self'"
)

// CSP returns the Content-Security-Policy sent with the page at path
// (DocsPath or RedocPath), "" for other paths.
func CSP(path string) string {
	switch path {
	case DocsPath:
		return docsCSP
	case RedocPath:
		return redocCSP
	}
	return ""
}

// Route is one handler this package serves, Path in httprouter syntax (all
// static).
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Routes returns every route of the docs: the two pages, /openapi.json and
// each asset. httpd serves them all without the bearer token.
func Routes() []Route {
	rs := []Route{
		{http.MethodGet, SpecPath, SpecHandler()},
		{http.MethodGet, DocsPath, DocsHandler()},
		{http.MethodGet, RedocPath, RedocHandler()},
	}
	for _, a := range loadAssets() {
		rs = append(rs, Route{http.MethodGet, AssetsPath + a.name, a})
	}
	return rs
}

// Register hands every route of Routes to handle, typically a thin wrapper
// over httprouter's Router.Handler.
func Register(handle func(method, path string, h http.Handler)) {
	for _, r := range Routes() {
		handle(r.Method, r.Path, r.Handler)
	}
}

// SpecHandler serves Spec as application/json.
func SpecHandler() http.Handler {
	return specHandler
}

var specHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b := specOnce()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	// no-cache: revalidate (cheaply, by ETag) so a new server version is
	// seen at once.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", specETag())
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
})

var specETag = sync.OnceValue(func() string { return `"` + hash(specOnce()) + `"` })

// DocsHandler serves the Swagger UI page.
func DocsHandler() http.Handler { return pageHandler(DocsPath) }

// RedocHandler serves the ReDoc page.
func RedocHandler() http.Handler { return pageHandler(RedocPath) }

// AssetsHandler serves every embedded asset under AssetsPath, for muxes
// that route by prefix; other paths answer 404.
func AssetsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, AssetsPath)
		for _, a := range loadAssets() {
			if ok && a.name == name {
				a.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// ---- pages ----

// pageTemplates renders the two pages. Neither carries inline script or
// any absolute URL: everything is loaded from this server.
var pageTemplates = template.Must(template.New("pages").Funcs(template.FuncMap{"asset": assetURL}).Parse(`
{{- define "docs" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - Swagger UI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{asset "swagger-ui.css"}}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{{asset "swagger-ui-bundle.js"}}"></script>
<script src="{{asset "swagger-init.js"}}"></script>
</body>
</html>
{{end}}
{{- define "redoc" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - ReDoc</title>
<link rel="icon" href="data:,">
</head>
<body>
<redoc spec-url="{{.SpecURL}}"></redoc>
<script src="{{asset "redoc.standalone.js"}}"></script>
</body>
</html>
{{end}}`))

// pages holds the rendered pages, by path.
var pages = sync.OnceValue(func() map[string][]byte {
	data := struct{ Title, SpecURL string }{vocab.ServiceName, SpecPath}
	out := make(map[string][]byte)
	for p, name := range map[string]string{DocsPath: "docs", RedocPath: "redoc"} {
		var b bytes.Buffer
		if err := pageTemplates.ExecuteTemplate(&b, name, data); err != nil {
			panic(fmt.Sprintf("apidocs: render %s: %v", p, err))
		}
		out[p] = b.Bytes()
	}
	return out
})

// assetURL is an asset's path with a content hash query, which makes the
// URL change whenever the content does and so lets assets be cached for a
// year.
func assetURL(name string) (string, error) {
	for _, a := range loadAssets() {
		if a.name == name {
			return AssetsPath + name + "?v=" + a.hash[:12], nil
		}
	}
	return "", fmt.Errorf("apidocs: no asset %q", name)
}

func pageHandler(p string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := pages()[p]
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", CSP(p))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

// ---- assets ----

// The files served under AssetsPath; see assets/README.md for their origin.
// The license files are not served one by one: they make up
// THIRD_PARTY_LICENSES.txt.
//
//go:embed assets/swagger-ui.css assets/swagger-ui-bundle.js assets/swagger-init.js assets/redoc.standalone.js
//go:embed assets/LICENSE.* assets/NOTICE.* assets/*.LICENSE.txt
var assetFS embed.FS

// servedAssets are the asset names with their content types.
var servedAssets = []struct{ name, contentType string }{
	{"swagger-ui.css", "text/css; charset=utf-8"},
	{"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
	{"swagger-init.js", "text/javascript; charset=utf-8"},
	{"redoc.standalone.js", "text/javascript; charset=utf-8"},
}

// licenseFiles make up THIRD_PARTY_LICENSES.txt, in this order.
var licenseFiles = []string{
	"LICENSE.swagger-ui-dist", "NOTICE.swagger-ui-dist", "swagger-ui-bundle.js.LICENSE.txt",
	"LICENSE.redoc", "redoc.standalone.js.LICENSE.txt",
}

const licensesName = "THIRD_PARTY_LICENSES.txt"

type asset struct {
	name, contentType string
	data              []byte
	hash              string // hex SHA-256 of data
	// gz is data gzip-compressed, made on first use: compressing ~3 MiB
	// is work that start-up should not pay for.
	gz func() []byte
}

var loadAssets = sync.OnceValue(func() []*asset {
	var as []*asset
	for _, s := range servedAssets {
		b, err := assetFS.ReadFile("assets/" + s.name)
		if err != nil {
			panic(fmt.Sprintf("apidocs: embedded asset: %v", err))
		}
		as = append(as, newAsset(s.name, s.contentType, b))
	}
	var lic bytes.Buffer
	for _, n := range licenseFiles {
		b, err := assetFS.ReadFile("assets/" + n)
		if err != nil {
			panic(fmt.Sprintf("apidocs: embedded license: %v", err))
		}
		fmt.Fprintf(&lic, "==== %s ====\n\n%s\n\n", n, bytes.TrimSpace(b))
	}
	return append(as, newAsset(licensesName, "text/plain; charset=utf-8", lic.Bytes()))
})

func newAsset(name, contentType string, data []byte) *asset {
	a := &asset{name: name, contentType: contentType, data: data, hash: hash(data)}
	a.gz = sync.OnceValue(func() []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(data) // writes to a bytes.Buffer cannot fail
		zw.Close()
		return b.Bytes()
	})
	return a
}

// assetMaxAge is one year, the longest max-age caches honour; asset URLs
// carry a content hash, so a cached copy is never stale.
const assetMaxAge = 365 * 24 * time.Hour

func (a *asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, immutable", int(assetMaxAge.Seconds())))
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.data, `"`+a.hash+`"`
	if AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gz(), `"`+a.hash+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, path.Base(a.name), time.Time{}, bytes.NewReader(body))
}

// AcceptsGzip reports whether an Accept-Encoding value allows gzip (the
// dashboard, package ui, serves its assets the same way).
func AcceptsGzip(ae string) bool {
	for part := range strings.SplitSeq(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
