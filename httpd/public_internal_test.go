package httpd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/securevision/events/httpd/apidocs"
	"github.com/securevision/events/httpd/ui"
	"github.com/securevision/events/internal/storetest"
)

// TestPublicRoutes: with auth on, every registered route answers 401
// without a token exactly when publicRoutes does not list it, every listed
// path is a route, and the OpenAPI document marks public the same
// operations.
func TestPublicRoutes(t *testing.T) {
	st := storetest.Open(t, storetest.Options{})
	s, err := New(Options{Log: st.Log, View: st.View, Ingest: st.Ingest, AuthToken: "s3cret",
		Stream: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		Backup: func(context.Context) (any, error) { return map[string]string{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	public := map[string]bool{}
	for _, p := range publicRoutes() {
		public[p] = true
	}
	routes := map[string]bool{}
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		routes[path] = true
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(method, strings.ReplaceAll(path, ":event_id", "1"), nil))
		if (rec.Code == http.StatusUnauthorized) == public[path] {
			t.Errorf("%s without a token: %d, public %v", r, rec.Code, public[path])
		}
	}
	for p := range public {
		if !routes[p] {
			t.Errorf("public path %s is not a route", p)
		}
	}
	// Besides the docs, only these are public: widening the list is a
	// decision this test makes visible. The dashboard's page and assets
	// hold no data (the page asks for the token).
	allowed := map[string]bool{"/": true, "/health": true, "/metrics": true,
		apidocs.DocsPath: true, apidocs.RedocPath: true, apidocs.SpecPath: true,
		ui.RootPath: true, ui.PagePath: true, ui.AssetRoute: true}
	for p := range public {
		if !allowed[p] && !strings.HasPrefix(p, apidocs.AssetsPath) {
			t.Errorf("%s is public", p)
		}
	}
	for _, op := range apidocs.Operations() {
		if op.Public != public[op.Path] {
			t.Errorf("OpenAPI %s %s: public %v, but the server serves it public=%v", op.Method, op.Path, op.Public, public[op.Path])
		}
	}
}
