package httpd

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures prometheus.Counter
	routes       []string
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "securevision_httpd_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "securevision_httpd_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_httpd_auth_failures_total",
			Help: "Requests refused for a missing or wrong token.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.authFailures)
	}
	return m
}

// instrument records the route's metrics and writes the access log (at
// Debug: a line per request is too much for the hot path at Info). The
// query string is logged with token values redacted (RedactQuery);
// headers never are.
func (s *Server) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch:
		default:
			method = "OTHER" // bounded label values
		}
		s.m.requests.WithLabelValues(route, method, strconv.Itoa(rec.code)).Inc()
		s.m.duration.WithLabelValues(route, method).Observe(d.Seconds())
		if s.logger.Enabled(context.Background(), slog.LevelDebug) {
			s.logger.Debug("http request", "method", r.Method, "path", r.URL.Path, "query", RedactQuery(r.URL.RawQuery),
				"route", route, "status", rec.code, "bytes", rec.n, "duration_ms", float64(d.Microseconds())/1000, "remote", r.RemoteAddr)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code        int
	n           int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.n += n
	return n, err
}

// Hijack lets the WebSocket upgrade through; the stream counts as 101.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("httpd: response writer cannot hijack")
	}
	r.code, r.wroteHeader = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
