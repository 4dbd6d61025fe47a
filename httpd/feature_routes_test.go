package httpd_test

import (
	"testing"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/webhook"
)

// featureRoutes are the routes the server gets through Options.Routes
// from the feature packages (the webhooks API), built over a store of
// their own, so that the route/document drift test sees every route the
// server serves.
func featureRoutes(t *testing.T) []httpd.Route {
	t.Helper()
	st := storetest.Open(t, storetest.Options{})
	m, err := webhook.New(webhook.Options{Log: st.Log, Subscribe: st.Subscribe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var routes []httpd.Route
	for _, r := range m.Routes() {
		routes = append(routes, httpd.Route{Method: r.Method, Path: r.Path, Handler: r.Handler})
	}
	return routes
}
