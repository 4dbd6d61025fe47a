// Package ui serves the operator's dashboard at /ui/: one HTML page and
// its static assets, embedded in the binary (go:embed), so the page works
// with no internet access and no front-end build at install time. The
// page is a client of the public API and nothing else: it reads events
// with GET /events, follows /stream, and uses the identity routes
// (corrections, plate and person history, galleries, watchlists) and
// GET /stats/hourly, whose handler (HourlyHandler) is here too.
//
// # Routes
//
//	GET /ui                  308 to /ui/
//	GET /ui/                 the page (index.html)
//	GET /ui/assets/:name     the page's script, styles and vendored libraries
//	GET /stats/hourly        detections per hour and camera (HourlyHandler;
//	                         mounted by the server's wiring, behind auth)
//
// The page and its assets hold no event data, so httpd serves them
// without the bearer token (its publicRoutes lists Routes()); with a token
// configured the page shows only a token form until the token is given,
// and every data call it makes carries the token.
//
// # Caching
//
// Assets are served with an ETag and Cache-Control: no-cache: a browser
// revalidates them (a 304 on an unchanged asset), so a new server version
// is picked up at the next load although app.js imports the vendored
// module by its plain name. Gzip is used when the client accepts it.
//
// # Content-Security-Policy
//
// The page runs under CSP (see CSP): scripts and styles only from this
// server and never inline, images from this server or blob: URLs (the
// snapshots are fetched with the token and shown through object URLs),
// connections (fetch, the WebSocket) only to this server. A page that
// tried to reach anything else would be stopped by the browser.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/securevision/events/httpd/apidocs"
	"github.com/securevision/events/internal/httpx"
)

// Paths this package serves.
const (
	// RootPath redirects to PagePath.
	RootPath = "/ui"
	// PagePath is the dashboard.
	PagePath = "/ui/"
	// AssetsPath prefixes the assets; AssetRoute is its route.
	AssetsPath = "/ui/assets/"
	AssetRoute = AssetsPath + ":name"
	// StatsPath is the route of HourlyHandler.
	StatsPath = "/stats/hourly"
)

// CSP is the page's Content-Security-Policy. 'self' in connect-src covers
// the same-origin WebSocket (ws: and wss: of this host).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
	"connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'; manifest-src 'none'; worker-src 'none'"

// Route is one handler this package serves, Path in httprouter syntax.
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Routes returns the page's routes: /ui, /ui/ and the assets. httpd
// serves them without the bearer token.
func Routes() []Route {
	return []Route{
		{http.MethodGet, RootPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Relative, so the client's Host is never echoed; 308 keeps
			// the method, and nothing but GET reaches here.
			w.Header().Set("Location", "ui/")
			w.WriteHeader(http.StatusPermanentRedirect)
		})},
		{http.MethodGet, PagePath, http.HandlerFunc(servePage)},
		{http.MethodGet, AssetRoute, http.HandlerFunc(serveAsset)},
	}
}

// Register hands every route of Routes to handle.
func Register(handle func(method, path string, h http.Handler)) {
	for _, r := range Routes() {
		handle(r.Method, r.Path, r.Handler)
	}
}

//go:embed assets/index.html assets/app.js assets/app.css assets/icon.svg
//go:embed assets/preact-htm.module.js assets/uplot.iife.min.js assets/uplot.min.css
//go:embed assets/LICENSE.*
var assetFS embed.FS

// servedAssets are the assets served under AssetsPath, with their content
// types. index.html is served at PagePath only.
var servedAssets = []struct{ name, contentType string }{
	{"app.js", "text/javascript; charset=utf-8"},
	{"app.css", "text/css; charset=utf-8"},
	{"preact-htm.module.js", "text/javascript; charset=utf-8"},
	{"uplot.iife.min.js", "text/javascript; charset=utf-8"},
	{"uplot.min.css", "text/css; charset=utf-8"},
	{"icon.svg", "image/svg+xml"},
}

// licenseFiles make up LicensesName, in this order.
var licenseFiles = []string{"LICENSE.htm", "LICENSE.preact", "LICENSE.uplot"}

// LicensesName is the asset that holds the vendored libraries' licences.
const LicensesName = "THIRD_PARTY_LICENSES.txt"

type asset struct {
	name, contentType string
	data, gz          []byte
	etag              string
}

var assets = sync.OnceValue(func() map[string]*asset {
	m := map[string]*asset{}
	read := func(name string) []byte {
		b, err := assetFS.ReadFile("assets/" + name)
		if err != nil {
			panic(fmt.Sprintf("ui: embedded asset: %v", err))
		}
		return b
	}
	for _, s := range servedAssets {
		m[s.name] = newAsset(s.name, s.contentType, read(s.name))
	}
	var lic bytes.Buffer
	for _, n := range licenseFiles {
		fmt.Fprintf(&lic, "==== %s ====\n\n%s\n\n", n, bytes.TrimSpace(read(n)))
	}
	m[LicensesName] = newAsset(LicensesName, "text/plain; charset=utf-8", lic.Bytes())
	m["index.html"] = newAsset("index.html", "text/html; charset=utf-8", read("index.html"))
	return m
})

func newAsset(name, contentType string, data []byte) *asset {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data) // writes to a bytes.Buffer cannot fail
	zw.Close()
	sum := sha256.Sum256(data)
	return &asset{name: name, contentType: contentType, data: data, gz: b.Bytes(),
		etag: hex.EncodeToString(sum[:16])}
}

// Assets lists the page's own assets (the page and everything it loads,
// not the licence file) with their sizes, raw and gzip-compressed as
// served: the benchmark's budget check.
func Assets() []AssetSize {
	var out []AssetSize
	for _, n := range append([]string{"index.html"}, assetNames()...) {
		a := assets()[n]
		out = append(out, AssetSize{Name: n, Bytes: len(a.data), Gzip: len(a.gz)})
	}
	return out
}

func assetNames() []string {
	ns := make([]string, len(servedAssets))
	for i, s := range servedAssets {
		ns[i] = s.name
	}
	return ns
}

// AssetSize is one asset's size.
type AssetSize struct {
	Name        string
	Bytes, Gzip int
}

func servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	assets()["index.html"].serve(w, r)
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, AssetsPath)
	a, ok := assets()[name]
	if !ok || name == "index.html" {
		httpx.WriteDetail(w, http.StatusNotFound, "Not Found")
		return
	}
	a.serve(w, r)
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.data, `"`+a.etag+`"`
	if apidocs.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gz, `"`+a.etag+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
