package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/nilcheck"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// Defaults of Options.
const (
	DefaultStream   = "SECUREVISION_EVENTS"
	DefaultReplicas = 3
	// DefaultConnectWait bounds start-up's wait for NATS and for the
	// stream: a cluster being started alongside the API gets that long to
	// elect a JetStream leader; an unreachable one is refused after it.
	DefaultConnectWait = 20 * time.Second
	// DefaultPublishTimeout bounds a publish without an acknowledgement:
	// a JetStream election takes a few seconds, so a write waits through
	// a short one and answers 503 after a long one.
	DefaultPublishTimeout = 8 * time.Second
	// DefaultApplyTimeout bounds the wait for this node's follower after
	// an acknowledged publish (read-your-writes).
	DefaultApplyTimeout = 10 * time.Second
)

// MaxBatch is the most events one request may carry in cluster mode: the
// server's default limit of messages in one atomic batch.
const MaxBatch = vocab.MaxClusterItems

// MaxReplicas is JetStream's largest replica count.
const MaxReplicas = 5

// Options configure a Node.
type Options struct {
	// URLs is the comma-separated list of NATS server URLs; required.
	URLs string
	// Stream is the stream's name; "" is DefaultStream.
	Stream string
	// Replicas of the stream when this node creates it, 1 to MaxReplicas;
	// 0 is DefaultReplicas. An existing stream keeps its own.
	Replicas int
	// CredsFile is a NATS credentials file (JWT and NKey seed); empty for
	// none.
	CredsFile string
	// TLSCAFile is a PEM file of the CAs that sign the servers'
	// certificates, for tls:// URLs with a private CA; empty for the
	// system's.
	TLSCAFile string
	// Name identifies this node in its retention markers and NATS
	// connection; "" is the host name and process id.
	Name string

	ConnectWait    time.Duration // 0: DefaultConnectWait
	PublishTimeout time.Duration // 0: DefaultPublishTimeout
	ApplyTimeout   time.Duration // 0: DefaultApplyTimeout

	// Log is the node's local store and View its projections (package
	// core passes its own); both required.
	Log  *eventlog.Log
	View *projections.View

	// Now is the clock for created_at and the idempotency window; nil is
	// time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate checks the options and fills the defaults. Its errors are one
// line each, naming the setting.
func (o *Options) Validate() error {
	if strings.TrimSpace(o.URLs) == "" {
		return errors.New("cluster: no NATS server URL")
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if !ValidStreamName(o.Stream) {
		return fmt.Errorf("cluster: stream name %q: use letters, digits, '-' and '_' (no spaces, dots, '*', '>', slashes)", o.Stream)
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Replicas < 1 || o.Replicas > MaxReplicas {
		return fmt.Errorf("cluster: replicas %d out of range: 1 to %d", o.Replicas, MaxReplicas)
	}
	for _, f := range []struct{ what, path string }{{"credentials file", o.CredsFile}, {"TLS CA file", o.TLSCAFile}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("cluster: %s %s: %w", f.what, f.path, err)
		} else if st.IsDir() {
			return fmt.Errorf("cluster: %s %s is a directory", f.what, f.path)
		}
	}
	if nilcheck.IsNil(o.Log) || o.View == nil {
		return errors.New("cluster: Options.Log and Options.View are required")
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if len(o.Name) > 255 {
		o.Name = o.Name[:255]
	}
	if o.ConnectWait <= 0 {
		o.ConnectWait = DefaultConnectWait
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = DefaultApplyTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ValidStreamName reports whether s can name the stream. JetStream refuses '.', '*', '>', whitespace and path
// separators in names; the name is also a token of the subjects.
func ValidStreamName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
