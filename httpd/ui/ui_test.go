package ui_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/securevision/events/httpd/ui"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// assetBudget is the page's own assets, gzip-compressed as served: the
// dashboard must load quickly on a phone over a weak link.
const assetBudget = 150 << 10

func serve(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func route(t *testing.T, path string) http.Handler {
	t.Helper()
	for _, r := range ui.Routes() {
		if r.Path == path {
			return r.Handler
		}
	}
	t.Fatalf("no route %s", path)
	return nil
}

// TestPage: the page is served under its CSP, loads only relative
// assets that exist, and holds no inline script or style.
func TestPage(t *testing.T) {
	rec := serve(t, route(t, ui.PagePath), http.MethodGet, ui.PagePath)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := rec.Header().Get("Content-Security-Policy"); got != ui.CSP {
		t.Errorf("CSP %q", got)
	}
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(ui.CSP, want) {
			t.Errorf("CSP lacks %s", want)
		}
	}
	if strings.Contains(ui.CSP, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", ui.CSP)
	}
	page := rec.Body.String()
	if regexp.MustCompile(`<script(?:\s+type="module")?>|<style|\son\w+=`).MatchString(page) {
		t.Errorf("inline script or style in the page:\n%s", page)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("page references %d assets", len(refs))
	}
	assets := route(t, ui.AssetRoute)
	for _, m := range refs {
		name, ok := strings.CutPrefix(m[1], "assets/")
		if !ok {
			t.Errorf("page references %s, not a relative asset", m[1])
			continue
		}
		if rec := serve(t, assets, http.MethodGet, ui.AssetsPath+name); rec.Code != http.StatusOK {
			t.Errorf("asset %s: %d", name, rec.Code)
		}
	}
	// app.js imports the vendored module by a relative name that exists.
	app := serve(t, assets, http.MethodGet, ui.AssetsPath+"app.js").Body.String()
	for _, m := range regexp.MustCompile(`from '\./([^']+)'`).FindAllStringSubmatch(app, -1) {
		if rec := serve(t, assets, http.MethodGet, ui.AssetsPath+m[1]); rec.Code != http.StatusOK {
			t.Errorf("app.js imports %s: %d", m[1], rec.Code)
		}
	}
}

// TestAssets: content types, revalidation by ETag, gzip, 404s, the
// licence file and the size budget.
func TestAssets(t *testing.T) {
	h := route(t, ui.AssetRoute)
	rec := serve(t, h, http.MethodGet, ui.AssetsPath+"app.js", "Accept-Encoding", "gzip")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" ||
		rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: %d %v", rec.Code, rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(zr)
	if !bytes.Contains(js, []byte("new WebSocket")) {
		t.Error("gzip body is not app.js")
	}
	etag := rec.Header().Get("ETag")
	if rec := serve(t, h, http.MethodGet, ui.AssetsPath+"app.js", "Accept-Encoding", "gzip", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d", rec.Code)
	}
	plain := serve(t, h, http.MethodGet, ui.AssetsPath+"app.js")
	if plain.Header().Get("Content-Encoding") != "" || !bytes.Equal(plain.Body.Bytes(), js) || plain.Header().Get("ETag") == etag {
		t.Error("identity encoding differs from the gzip one, or shares its ETag")
	}
	for _, name := range []string{"nope.js", "index.html", "../ui.go", ""} {
		rec := serve(t, h, http.MethodGet, ui.AssetsPath+name)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"detail":"Not Found"`) {
			t.Errorf("%q: %d %s", name, rec.Code, rec.Body)
		}
	}
	lic := serve(t, h, http.MethodGet, ui.AssetsPath+ui.LicensesName).Body.String()
	for _, want := range []string{"LICENSE.htm", "Apache License", "LICENSE.preact", "Jason Miller", "LICENSE.uplot", "Leon Sorokin"} {
		if !strings.Contains(lic, want) {
			t.Errorf("licences lack %q", want)
		}
	}
	total := 0
	for _, a := range ui.Assets() {
		total += a.Gzip
		if a.Gzip <= 0 || a.Gzip > a.Bytes+64 {
			t.Errorf("%s: %d bytes, %d gzipped", a.Name, a.Bytes, a.Gzip)
		}
	}
	if total > assetBudget {
		t.Errorf("the page's assets are %d bytes gzipped, over the %d budget", total, assetBudget)
	}
	t.Logf("page assets: %d bytes gzipped", total)
}

func TestRedirect(t *testing.T) {
	rec := serve(t, route(t, ui.RootPath), http.MethodGet, ui.RootPath)
	if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != "ui/" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
}

type fakeHourly struct {
	typ uint8
	c   projections.HourlyCounts
}

func (f *fakeHourly) Counts(typ uint8) projections.HourlyCounts { f.typ = typ; return f.c }

// TestHourlyHandler: parameters, the sources beyond limit summed in
// other, 422 and 503 answers.
func TestHourlyHandler(t *testing.T) {
	f := &fakeHourly{c: projections.HourlyCounts{StartMs: 7 * projections.HourMs, Complete: true}}
	for i, name := range []string{"a", "b", "c"} {
		s := projections.SourceCounts{Source: name, Total: uint64(30 - i)}
		s.Counts[0], s.Counts[vocab.StatsHours-1] = uint64(10-i), uint64(20)
		f.c.Sources = append(f.c.Sources, s)
	}
	h := ui.HourlyHandler(f)
	rec := serve(t, h, http.MethodGet, "/stats/hourly?type=plate_read&limit=2")
	var got ui.HourlyStats
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	if f.typ != vocab.PlateReadCode || got.StartMs != 7*projections.HourMs || got.Hours != vocab.StatsHours ||
		got.HourMs != 3600000 || !got.Complete || len(got.Sources) != 2 || got.Sources[1].Source != "b" ||
		len(got.Sources[0].Counts) != vocab.StatsHours || got.Sources[0].Counts[0] != 10 {
		t.Fatalf("answer %+v", got)
	}
	if got.Other == nil || got.Other.Sources != 1 || got.Other.Total != 28 || got.Other.Counts[0] != 8 || got.Other.Counts[vocab.StatsHours-1] != 20 {
		t.Fatalf("other %+v", got.Other)
	}
	rec = serve(t, h, http.MethodGet, "/stats/hourly")
	if !strings.Contains(rec.Body.String(), `"other":null`) || f.typ != 0 {
		t.Errorf("default: %s (type %d)", rec.Body, f.typ)
	}
	for q, want := range map[string]string{
		"limit=0":         "greater_than_equal",
		"limit=201":       "less_than_equal",
		"limit=x":         "int_parsing",
		"type=bogus":      "enum",
		"type=correction": "enum",
	} {
		rec := serve(t, h, http.MethodGet, "/stats/hourly?"+q)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	f.c.Err = io.ErrUnexpectedEOF
	if rec := serve(t, h, http.MethodGet, "/stats/hourly"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("failed rebuild: %d %s", rec.Code, rec.Body)
	}
}
