// Package apidocs owns the API's self-description: the OpenAPI 3.1 document
// served at /openapi.json, and the Swagger UI (/docs) and ReDoc (/redoc)
// pages that render it.
//
// # The document
//
// [Spec] is built once from Go values (see spec.go) and cached; it describes
// every route of the service, its parameters, bodies, headers and error
// responses (FastAPI's shapes: {"detail": "..."} and HTTPValidationError).
// The same table drives [Operations], so the httpd package can assert in a
// test that the router and the document never drift:
//
//	for _, op := range apidocs.Operations() {
//		if h, _, _ := router.Lookup(op.Method, op.Path); h == nil { t.Errorf(...) }
//	}
//
// Which routes need the bearer token is httpd's decision, made in one list
// there; the document marks the others public (no security), and
// [Operation].Public reports it so that httpd's tests can check the two
// agree. The limits, enums and identity the document states are vocab's
// (internal/vocab), as the server's are.
//
// # Pages and assets
//
// All front-end files are embedded (assets/, see assets/README.md for their
// npm origin); the pages load nothing from the network except /openapi.json.
// The single entry point is [Routes] (or its convenience wrapper
// [Register]), which yields every method, httprouter-style path and handler
// this package serves:
//
//	apidocs.Register(func(method, path string, h http.Handler) {
//		router.Handler(method, path, h)
//	})
//
// Every path is static (no wildcards), so it cannot collide with other routes.
// Pages are sent with a Content-Security-Policy limited to 'self' (see [CSP]),
// X-Content-Type-Options: nosniff and Cache-Control: no-cache; assets are
// addressed with a content hash query (?v=…) and cached for a year, and
// served gzip-compressed to clients that accept it.
//
// Everything here is immutable after package initialisation and safe for
// concurrent use.
package apidocs
