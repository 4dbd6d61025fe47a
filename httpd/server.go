// Package httpd serves the REST API, /metrics, the API docs and mounts the
// WebSocket stream. It holds no storage logic: handlers call projections
// (queries, health counts, retention) and ingest (the append path). The
// event types, limits and error shapes it answers with are internal/vocab's;
// query parameters are read and JSON answers written with internal/httpx,
// as the stream does.
//
// It depends on the core through three interfaces declared here, each
// naming only the methods the handlers call: Events (the projections),
// Ingester (the append path) and LogReader (the log of record, for
// snapshots and /health). Package core's *projections.View,
// *ingest.Service and *eventlog.Log implement them; a test or a wrapper
// may stand in for any of them.
//
// Every route is registered with its httprouter pattern, and the
// middleware chain is built per route so that metrics are labelled by
// pattern (/faces/:event_id), never by raw path:
//
//	metrics → access log → security headers → CORS → origin and body type → rate limit (REST) → auth → handler
//
// The origin and body type check (guard) refuses, with auth on or off, a
// state-changing request or a WebSocket upgrade whose Origin is foreign
// (403), and a request body that is not JSON or NDJSON (415).
package httpd

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/httprate"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/httpd/apidocs"
	"github.com/securevision/events/httpd/ui"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/nilcheck"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// LogReader is what the API reads from the log of record: snapshots
// (GET /events/:id/snapshot.jpg), and the extent and the write health
// (/health). It is part of eventlog.RecordLog, whose contract it keeps;
// *eventlog.Log implements it.
type LogReader interface {
	// Snapshot returns record id's blob; eventlog.ErrNotFound when it has
	// none.
	Snapshot(id uint64) ([]byte, error)
	// State is the extent: First the low-water id, Last the watermark.
	State() eventlog.State
	// Health is nil while the log takes writes, else why it does not.
	Health() error
}

// Events is what the API asks the projections: the pages of GET /events,
// single events, the rolling counts of /health and the retention of
// POST /cleanup. *projections.View implements it.
type Events interface {
	// Query appends the page q selects to dst as a JSON array of the
	// stored events and returns it with the page's count and cursor.
	Query(q projections.Query, dst []byte) ([]byte, projections.Page, error)
	// Event returns event id's type code and stored JSON;
	// eventlog.ErrNotFound when it is absent.
	Event(id uint64) (typ uint8, js []byte, err error)
	// Recent is the rolling counts, from memory.
	Recent() projections.Recent
	// Cleanup deletes the events older than cutoffMs and returns how many.
	Cleanup(ctx context.Context, cutoffMs int64) (int, error)
	// WatchEntries lists the plates the API put on a watchlist.
	WatchEntries(list string) []projections.WatchEntry
	// WatchOverride is the API's word on a matching key of a list.
	WatchOverride(list, key string) (present, ok bool)
	// SearchPlates is GET /search/plates; match gives list_match.
	SearchPlates(q string, maxDist float64, limit int, match func(string) string) ([]projections.PlateHit, error)
	// People is GET /people.
	People() ([]projections.Aggregate, error)
	// Person is one person's aggregate (GET /people/{name}/faces tells a
	// person without gallery faces from a name nobody has).
	Person(name string) (projections.Aggregate, error)
	// GalleryFaces is a person's current face gallery.
	GalleryFaces(name string) []projections.GalleryFace
}

// Ingester is what POST /ingest asks the append path: the append of a
// body that ingest.Decode has validated, and the count of the requests it
// refuses itself. *ingest.Service implements it.
type Ingester interface {
	// AppendValidated appends evs atomically (see
	// ingest.Service.AppendValidated): 1 to vocab.MaxItems events that
	// passed ingest.Validate.
	AppendValidated(ctx context.Context, evs []ingest.Event) (ingest.Result, error)
	// CountRejected counts a refused request by reason.
	CountRejected(reason string)
	// AppendAction appends an operator's action (a correction, a
	// watchlist change) and returns its id once it is durable and the
	// projections have it.
	AppendAction(ctx context.Context, a ingest.Action) (uint64, error)
}

// Options configure the HTTP API.
type Options struct {
	// Log, View and Ingest are required; package core's Log, View and
	// Ingest implement them.
	Log    LogReader
	View   Events
	Ingest Ingester
	// Stream serves GET /stream (wsfanout); nil answers 404.
	Stream http.Handler
	// StreamClients reports open streams for /health; nil reports 0.
	StreamClients func() int
	WSEnabled     bool
	// AuthToken enables bearer auth when non-empty.
	AuthToken          string
	CORSOrigins        []string
	RateLimitPerMinute int
	RetentionDays      int
	// Backup makes an online copy (POST /backup); nil answers 404. An
	// error that wraps eventlog.ErrBackupRunning answers 409; any other
	// answers 503 with a generic detail (the error is logged).
	Backup func(ctx context.Context) (any, error)
	// Lists gives the plate search its list_match (the watchlists as
	// matching sees them); nil leaves it null.
	Lists interface{ Match(plate string) string }
	// Eraser and Scrubber serve the erasure routes (DELETE /people/{name},
	// DELETE /history/plates/{text}); with either nil they are not served.
	Eraser   Eraser
	Scrubber Scrubber
	// StreamEraser securely deletes erased ids from a log of record that
	// is not the local store (cluster mode); nil on one node.
	StreamEraser StreamEraser
	// WatchlistFiles shows the watchlist files' plates in GET
	// /watchlists; nil shows the API's alone.
	WatchlistFiles WatchlistFiles
	// Routes are more routes, served behind the same middleware as the
	// built-in ones (auth unless publicRoutes lists the path): the
	// integrations' and identities' APIs, which live in their own
	// packages. Each must be documented (apidocs) like every route.
	Routes []Route
	// Health adds sections to GET /health, in this order, each as
	// "name": <the JSON of Value()> (for example mqtt and cluster).
	Health []HealthSection
	// Gatherer backs /metrics; nil uses the default gatherer.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for /health and retention; nil is time.Now.
	Now func() time.Time
}

// Route is one more route: Path in httprouter syntax.
type Route struct {
	Method, Path string
	Handler      http.HandlerFunc
}

// HealthSection is one more member of the /health object. Value must be
// cheap (it runs on every probe) and must not block.
type HealthSection struct {
	Name  string
	Value func() any
}

// Validate checks the options.
func (o *Options) Validate() error {
	if nilcheck.IsNil(o.Log) || nilcheck.IsNil(o.View) || nilcheck.IsNil(o.Ingest) {
		return fmt.Errorf("httpd: Log, View and Ingest are required")
	}
	if o.RateLimitPerMinute < 0 {
		return fmt.Errorf("httpd: RateLimitPerMinute must be >= 0")
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	opts    Options
	now     func() time.Time
	logger  *slog.Logger
	router  *httprouter.Router
	m       *httpMetrics
	limiter *httprate.RateLimiter
	cors    *cors.Cors
	public  map[string]bool
	token   []byte
	// imageSem bounds the gallery images decoded at once (gallery.go).
	imageSem chan struct{}
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		now:    opts.Now,
		logger: opts.Logger,
		router: httprouter.New(),
		m:      newHTTPMetrics(opts.Registerer),
		token:  []byte(opts.AuthToken),

		imageSem: make(chan struct{}, galleryDecodes),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if opts.RateLimitPerMinute > 0 {
		s.limiter = httprate.NewRateLimiter(opts.RateLimitPerMinute, time.Minute,
			// The TCP peer, never a header: not spoofable (reliability's
			// abuse test sends X-Forwarded-For); behind a proxy every
			// client shares its bucket (see the README).
			//lint:ignore SA1019 deprecated only to make users choose; the peer address is the choice.
			httprate.WithKeyFuncs(httprate.KeyByIP),
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				httpx.WriteDetail(w, http.StatusTooManyRequests, "Rate limit exceeded: try again later")
			}))
	}
	if len(opts.CORSOrigins) > 0 {
		s.cors = cors.New(cors.Options{
			AllowedOrigins: opts.CORSOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key"},
			ExposedHeaders: []string{"X-Next-Cursor", "Link", "Retry-After", "Idempotent-Replayed"},
			MaxAge:         600,
		})
	}
	s.routes()
	return s, nil
}

// publicRoutes lists the routes served without the bearer token, with
// auth on or off, and is the one place that decides it: the service's
// identity, health and metrics, which load balancers, probes and scrapers
// call without a token, and every route of the API docs (the pages,
// /openapi.json and the pages' assets, which a browser loads without
// sending the token), which describe the API and hold no event data, and
// the dashboard's page and assets (package ui), which hold none either:
// with auth on the page shows a token form and sends the token on every
// data call. The OpenAPI document marks its public operations to match, and
// TestPublicRoutes checks both that and what auth does on every route.
func publicRoutes() []string {
	paths := []string{"/", "/health", "/metrics"}
	for _, r := range apidocs.Routes() {
		paths = append(paths, r.Path)
	}
	for _, r := range ui.Routes() {
		paths = append(paths, r.Path)
	}
	return paths
}

func (s *Server) routes() {
	s.public = map[string]bool{}
	for _, p := range publicRoutes() {
		s.public[p] = true
	}
	r := s.router
	// Routes match exactly, as in FastAPI: httprouter's case-insensitive
	// path fixing would answer /EVENTS with a redirect to /events, and its
	// trailing-slash redirect is a 301 for GET (cached by browsers) where
	// FastAPI answers 307; notFound does that one instead.
	r.RedirectFixedPath = false
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.NotFound = s.wrap("not_found", "", http.HandlerFunc(s.notFound), true)
	r.MethodNotAllowed = s.wrap("method_not_allowed", "", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	}), true)
	// CORS preflight on any route when CORS is on; otherwise 405 as
	// FastAPI without CORSMiddleware.
	r.HandleOPTIONS = s.cors != nil
	if s.cors != nil {
		r.GlobalOPTIONS = s.cors.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
	}

	s.handle(http.MethodGet, "/", s.root)
	s.handle(http.MethodGet, "/health", s.health)
	gatherer := s.opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	s.handle(http.MethodGet, "/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.logger}}).ServeHTTP)
	s.handle(http.MethodPost, "/ingest", s.ingest)
	s.handle(http.MethodPost, "/cleanup", s.cleanup)
	s.handle(http.MethodGet, "/events", s.events)
	s.handle(http.MethodGet, "/events/:event_id", s.eventByID(0, "Event not found"))
	s.handle(http.MethodGet, "/events/:event_id/snapshot.jpg", s.snapshot)
	s.handle(http.MethodGet, "/faces/:event_id", s.eventByID(vocab.FaceMatchCode, "Face match event not found"))
	s.handle(http.MethodGet, "/plates/:event_id", s.eventByID(vocab.PlateReadCode, "Plate read event not found"))
	s.handle(http.MethodPost, "/events/:event_id/corrections", s.correct)
	s.handle(http.MethodGet, "/search/plates", s.searchPlates)
	s.handle(http.MethodGet, "/history/plates/:text", s.history(false))
	s.handle(http.MethodGet, "/history/people/:name", s.history(true))
	s.handle(http.MethodGet, "/people", s.people)
	s.handle(http.MethodGet, galleryFacesPath, s.galleryList)
	s.handle(http.MethodPost, galleryFacesPath, s.galleryAdd)
	s.handle(http.MethodGet, galleryFacesPath+"/:face_id", s.galleryImage)
	s.handle(http.MethodDelete, galleryFacesPath+"/:face_id", s.galleryDelete)
	if s.opts.Eraser != nil && s.opts.Scrubber != nil {
		s.handle(http.MethodDelete, "/people/:name", s.erase("person"))
		s.handle(http.MethodDelete, "/history/plates/:text", s.erase("plate"))
	}
	s.handle(http.MethodGet, "/watchlists", s.watchlists)
	s.handle(http.MethodPut, "/watchlists/:list/:plate", s.watchPut)
	s.handle(http.MethodDelete, "/watchlists/:list/:plate", s.watchDelete)
	if s.opts.Stream != nil {
		s.handle(http.MethodGet, "/stream", s.opts.Stream.ServeHTTP)
	}
	if s.opts.Backup != nil {
		s.handle(http.MethodPost, "/backup", s.backup)
	}
	for _, rt := range s.opts.Routes {
		s.handle(rt.Method, rt.Path, rt.Handler)
	}
	apidocs.Register(func(method, path string, h http.Handler) { s.handle(method, path, h.ServeHTTP) })
	ui.Register(func(method, path string, h http.Handler) { s.handle(method, path, h.ServeHTTP) })
}

// notFound answers 404 Not Found, or, when the path without its trailing
// slash is a route for this method, 307 to it as FastAPI does
// (redirect_slashes): the method and body are kept. The Location is
// relative, so the client's Host header is never echoed, and it can only
// name a registered route, so it cannot point off the server.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); len(p) > 1 && strings.HasSuffix(p, "/") {
		if h, _, _ := s.router.Lookup(r.Method, strings.TrimSuffix(r.URL.Path, "/")); h != nil {
			loc := strings.TrimSuffix(p, "/")
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
	}
	httpx.WriteDetail(w, http.StatusNotFound, "Not Found")
}

// Routes lists the registered routes as "METHOD /pattern" (for the
// OpenAPI drift test).
func (s *Server) Routes() []string { return append([]string(nil), s.m.routes...) }

func (s *Server) handle(method, path string, h http.HandlerFunc) {
	s.m.routes = append(s.m.routes, method+" "+path)
	wrapped := s.wrap(path, method, h, s.public[path])
	s.router.Handler(method, path, wrapped)
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.router }

// wrap builds the middleware chain of one route (see the package doc).
func (s *Server) wrap(route, method string, h http.Handler, public bool) http.Handler {
	if !public {
		h = s.auth(h)
	}
	if s.limiter != nil && route != "/stream" && route != "/metrics" && route != "/health" {
		h = s.limiter.Handler(h)
	}
	h = s.guard(h, route == galleryFacesPath)
	if s.cors != nil {
		h = s.cors.Handler(h)
	}
	h = securityHeaders(h)
	return s.instrument(route, h)
}

// guard refuses what a web page on another site could make a browser
// send: CORS only tells the browser whether the page may read the answer,
// and form or text/plain posts reach the server without asking first. So
// a state-changing request (any method but GET, HEAD, OPTIONS and TRACE)
// or a WebSocket upgrade (browsers send Origin on both) from a foreign
// origin is refused with 403, and a request body must be JSON or NDJSON
// (415 otherwise), a type no browser sends cross-site without a CORS
// preflight. Clients that send no Origin (curl, cameras, scripts) are not
// pages, and a body without Content-Type is read as JSON, as FastAPI does.
//
// With jpegOK (POST /people/{name}/faces, which takes a face image) an
// image/jpeg body is accepted too. That keeps the guarantee: image/jpeg is
// not a CORS-safelisted type (only form encodings and text/plain are), so
// a browser sends it cross-site only after a preflight that CORS decides,
// and a foreign Origin is refused above anyway.
func (s *Server) guard(next http.Handler, jpegOK bool) http.Handler {
	refused := "Unsupported Media Type: send the body as application/json or application/x-ndjson"
	if jpegOK {
		refused = "Unsupported Media Type: send the body as application/json or image/jpeg"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unsafe := !safeMethod(r.Method)
		if (unsafe || len(r.Header.Values("Upgrade")) > 0) && !s.originAllowed(r) {
			httpx.WriteDetail(w, http.StatusForbidden, "Cross-origin request refused: this Origin is not allowed (SECUREVISION__API__CORS_ORIGINS)")
			return
		}
		if ct := r.Header.Get("Content-Type"); unsafe && r.ContentLength != 0 && !jsonBodyType(ct) && !(jpegOK && jpegBodyType(ct)) {
			httpx.WriteDetail(w, http.StatusUnsupportedMediaType, refused)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// originAllowed reports whether the request carries no Origin, or one
// Origin that is the server's own or allowed by the CORS list (rs/cors's
// matching: "*", exact origins, one wildcard each). "null" (sandboxed
// frames, file: pages, some redirects) is foreign unless the list is "*".
func (s *Server) originAllowed(r *http.Request) bool {
	switch o := r.Header.Values("Origin"); len(o) {
	case 0:
		return true
	case 1:
		return sameOrigin(o[0], r) || s.cors != nil && o[0] != "" && s.cors.OriginAllowed(r)
	}
	return false // browsers send one; several can only be forged
}

// sameOrigin reports whether origin is scheme://Host of the request, the
// origin of pages this server serves (/docs). Host and scheme compare
// case-insensitively, and a default port equals none. Behind a proxy that
// terminates TLS the browser's origin is https:// while the request
// arrives over http: list that origin in SECUREVISION__API__CORS_ORIGINS.
func sameOrigin(origin string, r *http.Request) bool {
	scheme, port := "http://", ":80"
	if r.TLS != nil {
		scheme, port = "https://", ":443"
	}
	if r.Host == "" || len(origin) <= len(scheme) || !strings.EqualFold(origin[:len(scheme)], scheme) {
		return false
	}
	return strings.EqualFold(strings.TrimSuffix(origin[len(scheme):], port), strings.TrimSuffix(r.Host, port))
}

// jsonBodyType reports whether ct names a body the API reads: JSON
// (application/json or a +json type), one of the NDJSON types that POST
// /ingest decodes line by line, or none at all. Parameters (charset) are
// allowed and the media type compares case-insensitively.
func jsonBodyType(ct string) bool {
	switch ct {
	case "", "application/json", "application/x-ndjson": // what clients send, without parsing
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	return mt == "application/json" || slices.Contains(ndjsonTypes, mt) ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// auth checks the bearer token in constant time. /stream also accepts
// ?token= because browsers cannot set headers on WebSockets.
func (s *Server) auth(next http.Handler) http.Handler {
	if len(s.token) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := ""
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			got = strings.TrimSpace(a[7:])
		} else if r.URL.Path == "/stream" {
			got = r.URL.Query().Get("token")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
			s.m.authFailures.Inc()
			w.Header().Set("WWW-Authenticate", "Bearer")
			httpx.WriteDetail(w, http.StatusUnauthorized, "Authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// RedactQuery returns the raw query for logs with every value that could
// be a token replaced by REDACTED, the rest kept as sent. Keys are judged
// decoded, as auth reads them (%74oken is token), by [tokenKey]. A part
// whose key does not decode is replaced whole, since what it names cannot
// be told, and so is a token-like key without '=' (the value may be run
// into it). Parts are split at ';' as well as '&': Go's parser drops a
// pair holding ';', but other parsers and clients take it as a separator.
func RedactQuery(q string) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	start := 0
	for i := 0; i <= len(q); i++ {
		if i < len(q) && q[i] != '&' && q[i] != ';' {
			continue
		}
		b.WriteString(redactPart(q[start:i]))
		if i < len(q) {
			b.WriteByte(q[i])
		}
		start = i + 1
	}
	return b.String()
}

func redactPart(p string) string {
	rawKey, _, hasValue := strings.Cut(p, "=")
	key, err := url.QueryUnescape(rawKey)
	switch {
	case err != nil, tokenKey(key) && !hasValue:
		return "REDACTED"
	case tokenKey(key):
		return rawKey + "=REDACTED"
	}
	return p
}

// tokenKey reports whether a decoded query key may carry a token: auth
// reads only "token", but a client may send it as TOKEN or access_token,
// and those must stay out of logs and links too.
func tokenKey(k string) bool {
	return strings.Contains(strings.ToLower(k), "token")
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error(fmt.Sprint(v...), "component", "promhttp") }
