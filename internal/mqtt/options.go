package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
)

// Defaults of Options.
const (
	DefaultTopicPrefix     = "securevision"
	DefaultDiscoveryPrefix = "homeassistant"
	// DefaultAlertOffDelay: a blacklist read is an event of a moment; the
	// alert stays on long enough for an automation or a person to notice.
	DefaultAlertOffDelay = 30 * time.Second
	// DefaultFlushInterval bounds the events republished after a crash
	// (those acknowledged since the last write) while costing the log one
	// small synced write per interval, not one per event.
	DefaultFlushInterval = time.Second
	// DefaultMaxCameras bounds the cameras announced to Home Assistant and
	// remembered in the store: frame_source_id comes from clients, and
	// every new one would otherwise add a device and three retained
	// messages.
	DefaultMaxCameras = 1000
)

// Tuning the package does not export as options.
const (
	// chunkEvents is the most records one read of the log covers; the
	// retained per-camera messages are published once per chunk.
	chunkEvents = 256
	// windowChunks is how many chunks may await their PUBACKs at once:
	// with chunkEvents it bounds the unacknowledged publications (and the
	// payload memory they hold) while keeping the connection busy.
	windowChunks = 32
	// connectTimeout bounds one connection attempt (TCP, TLS, CONNACK).
	connectTimeout = 10 * time.Second
	// writeTimeout bounds a write to the broker; a Publish blocked by a
	// dead connection gives up after it.
	writeTimeout = 10 * time.Second
	// keepAlive: the broker drops us (and publishes our will) when it hears
	// nothing for 1.5 × this; we notice a dead broker after it plus
	// pingTimeout.
	keepAlive   = 30 * time.Second
	pingTimeout = 10 * time.Second
	// Reconnection back-off, doubled per failed attempt.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// drainTimeout bounds how long Stop waits for the PUBACKs of what is
	// in flight before it disconnects (what is not acknowledged is
	// published again after the restart).
	drainTimeout = 5 * time.Second
	// persistTimeout bounds one cursor write.
	persistTimeout = 10 * time.Second
)

// Options configure New. Zero values are the defaults where one is named.
type Options struct {
	// URL is the broker: mqtt://host[:port] (port 1883 by default) or
	// mqtts://host[:port] (TLS, 8883). Credentials go in Username and
	// Password, never in the URL.
	URL      string
	Username string
	Password string
	// ClientID is the MQTT client id; empty: "securevision-<hostname>".
	// Two publishers with one client id take the connection from each
	// other.
	ClientID string
	// TopicPrefix is the first level(s) of every topic; empty:
	// DefaultTopicPrefix.
	TopicPrefix string
	// DiscoveryPrefix is Home Assistant's discovery prefix; empty: no
	// discovery messages (the caller maps an unset setting to
	// DefaultDiscoveryPrefix).
	DiscoveryPrefix string
	// AlertOffDelay is how long a camera's watchlist alert stays on after
	// a blacklisted plate; 0: DefaultAlertOffDelay.
	AlertOffDelay time.Duration
	// FlushInterval is how often the cursor is persisted; 0:
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxCameras bounds the cameras with discovery; 0: DefaultMaxCameras.
	MaxCameras int
	// TLS configures mqtts; nil: the system roots and the URL's host name.
	TLS *tls.Config
	// Log is the log of record the publisher reads and keeps its cursor
	// in (required).
	Log eventlog.RecordLog
	// Decorate, when set, builds the published JSON of an event from its
	// stored JSON (appending to dst), as GET /events/{id} does, so that
	// both stay byte-identical; nil publishes the stored bytes.
	Decorate func(dst []byte, id uint64, stored []byte) []byte
	// Cursor, in cluster mode, keeps the cursor where every node reads
	// it (package lease's state bucket) instead of in Log: the node that
	// takes the integrations' lease over starts from it. nil on one node.
	Cursor CursorStore
	// Now is the clock of the watchlist alerts; nil is time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Broker is a parsed broker URL.
type Broker struct {
	// Server is the URL as the MQTT client takes it (tcp://host:port or
	// ssl://host:port).
	Server string
	// Host is host:port, for logs and health (the URL holds no secret).
	Host string
	TLS  bool
}

// ParseURL checks a broker URL: scheme mqtt or mqtts, a host, an optional
// port, nothing else (no credentials, path, query or fragment).
func ParseURL(raw string) (Broker, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Broker{}, errors.New("not a URL")
	}
	var b Broker
	port := ""
	switch u.Scheme {
	case "mqtt":
		port = "1883"
	case "mqtts":
		port, b.TLS = "8883", true
	default:
		return Broker{}, fmt.Errorf("scheme %q is not mqtt or mqtts", u.Scheme)
	}
	switch {
	case u.User != nil:
		return Broker{}, errors.New("credentials belong in SECUREVISION__MQTT__USERNAME and …__PASSWORD, not in the URL")
	case u.Opaque != "" || u.Host == "":
		return Broker{}, errors.New("no host")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return Broker{}, errors.New("a path, query or fragment is not allowed")
	}
	host := u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Broker{}, fmt.Errorf("port %q is not 1-65535", p)
		}
		port = p
	}
	if host == "" {
		return Broker{}, errors.New("no host")
	}
	b.Host = net.JoinHostPort(host, port)
	if b.TLS {
		b.Server = "ssl://" + b.Host
	} else {
		b.Server = "tcp://" + b.Host
	}
	return b, nil
}

// RedactURL returns raw for messages, with any userinfo replaced, so that
// a refused URL never puts a password in a log line; an unparsable URL
// (which may hold one) is not shown at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "(unparsable URL, not shown)"
	case u.User != nil:
		u.User = url.User("xxxxx")
		return u.String()
	}
	return raw
}

// withDefaults returns o with its defaults filled in, and checks it.
func (o Options) withDefaults() (Options, Broker, error) {
	if o.Log == nil {
		return o, Broker{}, errors.New("mqtt: Log is required")
	}
	b, err := ParseURL(o.URL)
	if err != nil {
		return o, Broker{}, fmt.Errorf("mqtt: URL %s: %w", RedactURL(o.URL), err)
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	if err := ValidatePrefix(o.TopicPrefix); err != nil {
		return o, b, fmt.Errorf("mqtt: topic prefix %q: %w", o.TopicPrefix, err)
	}
	if o.DiscoveryPrefix != "" {
		if err := ValidatePrefix(o.DiscoveryPrefix); err != nil {
			return o, b, fmt.Errorf("mqtt: discovery prefix %q: %w", o.DiscoveryPrefix, err)
		}
	}
	if o.ClientID == "" {
		h, _ := os.Hostname()
		o.ClientID = "securevision-" + h
	}
	switch {
	case o.AlertOffDelay < 0 || o.FlushInterval < 0 || o.MaxCameras < 0:
		return o, b, errors.New("mqtt: AlertOffDelay, FlushInterval and MaxCameras must not be negative")
	case o.AlertOffDelay == 0:
		o.AlertOffDelay = DefaultAlertOffDelay
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxCameras == 0 {
		o.MaxCameras = DefaultMaxCameras
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, b, nil
}

// CursorStore keeps the publisher's cursor outside the local store (see
// Options.Cursor). Load's false means never stored.
type CursorStore interface {
	Load(ctx context.Context) (uint64, bool, error)
	Store(ctx context.Context, cursor uint64) error
}
