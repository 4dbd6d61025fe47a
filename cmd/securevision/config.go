package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest/vision"
	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/mqtt"
)

// Config is the service configuration (docs/api.md, "Configuration", lists
// every variable), read from the environment with caarlos0/env. Field
// names are unique across the whole
// struct: a parse error names the Go field, and envKey maps it back to the
// variable. The allowed tag is what the refusal says is allowed.
type Config struct {
	API struct {
		Host        string   `env:"HOST" envDefault:"127.0.0.1" allowed:"a host name or IP address"`
		Port        int      `env:"PORT" envDefault:"8000" allowed:"an integer from 1 to 65535"`
		WSEnabled   bool     `env:"WS_ENABLED" envDefault:"true" allowed:"true or false"`
		AuthToken   string   `env:"AUTH_TOKEN" allowed:"a bearer token (empty: auth off)"`
		CORSOrigins []string `env:"CORS_ORIGINS" envSeparator:"," allowed:"a comma-separated list of origins, or *"`
		RateLimit   int      `env:"RATE_LIMIT_PER_MINUTE" envDefault:"0" allowed:"an integer >= 0 (0: off)"`
		WSMaxConns  int      `env:"WS_MAX_CLIENTS" envDefault:"10000" allowed:"an integer >= 1"`
	} `envPrefix:"SECUREVISION__API__"`
	Events struct {
		DBURL           string        `env:"DB_URL" envDefault:"pebble://data/events" allowed:"pebble:///abs/dir, pebble://rel/dir, a directory path or memory://"`
		RetentionDays   int           `env:"RETENTION_DAYS" envDefault:"30" allowed:"an integer >= 0 (0: keep forever)"`
		CleanupInterval time.Duration `env:"CLEANUP_INTERVAL" envDefault:"1h" allowed:"a positive Go duration such as 30m or 1h"`
		BackupDir       string        `env:"BACKUP_DIR" envDefault:"data/backups" allowed:"a directory path"`
		BackupKeep      int           `env:"BACKUP_KEEP" envDefault:"7" allowed:"an integer >= 1"`
		CacheMB         int           `env:"CACHE_MB" envDefault:"256" allowed:"an integer from 8 to 65536 (MiB)"`
		SourceIndex     string        `env:"SOURCE_INDEX" envDefault:"covering" allowed:"covering or keys"`
	} `envPrefix:"SECUREVISION__EVENTS__"`
	Ingest struct {
		Sources      string        `env:"SOURCES" allowed:"name=url pairs separated by ;"`
		FPS          float64       `env:"FPS" envDefault:"5" allowed:"a number > 0 and <= 60"`
		GalleryDir   string        `env:"GALLERY_DIR" allowed:"a directory path"`
		Threshold    float64       `env:"SIMILARITY_THRESHOLD" envDefault:"0" allowed:"a number from 0 up to, not including, 1 (0: the recogniser's default)"`
		Cooldown     time.Duration `env:"COOLDOWN" envDefault:"10s" allowed:"a Go duration >= 0 such as 10s"`
		Whitelist    string        `env:"PLATE_WHITELIST" allowed:"a file path"`
		Blacklist    string        `env:"PLATE_BLACKLIST" allowed:"a file path"`
		Regions      string        `env:"REGIONS" allowed:"source=region pairs separated by ;"`
		FaceCascade  string        `env:"FACE_CASCADE" allowed:"a file path"`
		PlateCascade string        `env:"PLATE_CASCADE" allowed:"a file path"`
	} `envPrefix:"SECUREVISION__INGEST__"`
	MQTT struct {
		URL      string `env:"URL" allowed:"mqtt://host[:port] or mqtts://host[:port] (empty: off)"`
		Username string `env:"USERNAME" allowed:"a user name"`
		Password string `env:"PASSWORD" allowed:"a password"`
		ClientID string `env:"CLIENT_ID" allowed:"an MQTT client id (empty: securevision-<hostname>)"`
		// TopicPrefix's default applies to an empty value, as for every
		// setting; DiscoveryPrefix is the exception (see LoadConfig).
		TopicPrefix     string        `env:"TOPIC_PREFIX" envDefault:"securevision" allowed:"MQTT topic levels without +, #, NUL, empty levels or a leading $"`
		DiscoveryPrefix string        `env:"DISCOVERY_PREFIX" allowed:"MQTT topic levels without +, #, NUL, empty levels or a leading $ (set but empty: no discovery)"`
		AlertOffDelay   time.Duration `env:"ALERT_OFF_DELAY" envDefault:"30s" allowed:"a positive Go duration such as 30s"`
	} `envPrefix:"SECUREVISION__MQTT__"`
	Webhooks struct {
		WebhookAllowLoopback bool          `env:"ALLOW_LOOPBACK" envDefault:"false" allowed:"true or false"`
		WebhookTimeout       time.Duration `env:"TIMEOUT" envDefault:"10s" allowed:"a Go duration from 1s to 5m such as 10s"`
		WebhookConcurrency   int           `env:"MAX_CONCURRENCY" envDefault:"32" allowed:"an integer from 1 to 1024"`
	} `envPrefix:"SECUREVISION__WEBHOOKS__"`
	Cluster struct {
		NATSURL   string `env:"NATS_URL" allowed:"a comma-separated list of NATS server URLs (empty: single node)"`
		Stream    string `env:"STREAM" envDefault:"SECUREVISION_EVENTS" allowed:"a JetStream stream name: letters, digits, - and _"`
		Replicas  int    `env:"REPLICAS" envDefault:"3" allowed:"an integer from 1 to 5"`
		CredsFile string `env:"CREDS_FILE" allowed:"the path of a NATS credentials file"`
		TLSCAFile string `env:"TLS_CA_FILE" allowed:"the path of a PEM file of CA certificates"`
	} `envPrefix:"SECUREVISION__CLUSTER__"`
	// LogLevel is also read before the rest (logLevel), so that start-up
	// is logged at that level; here it is validated.
	LogLevel slog.Level `env:"SECUREVISION__LOG_LEVEL" envDefault:"INFO" allowed:"DEBUG, INFO, WARN or ERROR"`
	Debug    struct {
		PprofAddr string `env:"PPROF_ADDR" allowed:"a loopback host:port such as 127.0.0.1:6060 (empty: off)"`
	} `envPrefix:"SECUREVISION__DEBUG__"`
}

// ConfigError is a refused setting: one line naming the variable, the value
// and what is allowed.
type ConfigError struct {
	Var, Value, Allowed, Why string
}

func (e *ConfigError) Error() string {
	s := fmt.Sprintf("%s=%q is invalid", e.Var, e.Value)
	if e.Why != "" {
		s += ": " + e.Why
	}
	if e.Allowed != "" {
		s += "; allowed: " + e.Allowed
	}
	return s
}

// LoadConfig reads the configuration from environ (KEY=VALUE strings).
func LoadConfig(environ map[string]string) (*Config, error) {
	var c Config
	err := env.ParseWithOptions(&c, env.Options{Environment: environ})
	if err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) && len(agg.Errors) > 0 {
			err = agg.Errors[0]
		}
		var pe env.ParseError
		if errors.As(err, &pe) {
			key, allowed := envKey(pe.Name)
			return nil, &ConfigError{Var: key, Value: environ[key], Allowed: allowed}
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	// Home Assistant discovery is on unless the variable is set to the
	// empty string: unlike the other settings, empty is a value here.
	if _, set := environ["SECUREVISION__MQTT__DISCOVERY_PREFIX"]; !set {
		c.MQTT.DiscoveryPrefix = mqtt.DefaultDiscoveryPrefix
	}
	return &c, c.Validate(environ)
}

// Validate checks ranges and forms the types alone do not.
func (c *Config) Validate(environ map[string]string) error {
	bad := func(field, why string) error {
		key, allowed := envKey(field)
		v, ok := environ[key]
		if !ok {
			v = "(default)"
		}
		return &ConfigError{Var: key, Value: v, Allowed: allowed, Why: why}
	}
	switch {
	case c.API.Port < 1 || c.API.Port > 65535:
		return bad("Port", "out of range")
	case !validHost(c.API.Host):
		return bad("Host", "")
	case c.API.RateLimit < 0:
		return bad("RateLimit", "negative")
	case c.API.WSMaxConns < 1:
		return bad("WSMaxConns", "")
	case c.Events.RetentionDays < 0:
		return bad("RetentionDays", "negative")
	case c.Events.BackupKeep < 1:
		return bad("BackupKeep", "")
	case c.Events.CacheMB < 8 || c.Events.CacheMB > 65536:
		return bad("CacheMB", "out of range")
	case c.Events.SourceIndex != "covering" && c.Events.SourceIndex != "keys":
		return bad("SourceIndex", "")
	case c.Events.CleanupInterval <= 0:
		return bad("CleanupInterval", "must be positive")
	// Written as !(in range) so that NaN, which every comparison rejects,
	// is refused too. The ranges are the pipeline's (vision.Options
	// Validate), checked here so that the refusal names the variable.
	case !(c.Ingest.FPS > 0 && c.Ingest.FPS <= vision.MaxFPS):
		return bad("FPS", "")
	case !(c.Ingest.Threshold >= 0 && c.Ingest.Threshold < 1):
		return bad("Threshold", "")
	case !namedLevel(c.LogLevel):
		return bad("LogLevel", "")
	case c.Ingest.Cooldown < 0:
		return bad("Cooldown", "negative")
	case c.Webhooks.WebhookTimeout < time.Second || c.Webhooks.WebhookTimeout > 5*time.Minute:
		return bad("WebhookTimeout", "out of range")
	case c.Webhooks.WebhookConcurrency < 1 || c.Webhooks.WebhookConcurrency > 1024:
		return bad("WebhookConcurrency", "out of range")
	case c.Cluster.Replicas < 1 || c.Cluster.Replicas > cluster.MaxReplicas:
		return bad("Replicas", "out of range")
	}
	if err := c.validateCluster(); err != nil {
		return bad(err.field, err.why)
	}
	if a := c.Debug.PprofAddr; a != "" {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return bad("PprofAddr", "profiles expose internals: only a loopback address is allowed")
		}
	}
	for _, o := range c.API.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return bad("CORSOrigins", fmt.Sprintf("origin %q is not * or an http(s) origin", o))
		}
	}
	if _, _, err := eventlog.ParseURL(c.Events.DBURL); err != nil {
		return bad("DBURL", err.Error())
	}
	return c.validateMQTT(bad)
}

// validateMQTT checks the MQTT settings; a refused URL is shown without
// its credentials.
func (c *Config) validateMQTT(bad func(field, why string) error) error {
	m := c.MQTT
	if m.URL != "" {
		if _, err := mqtt.ParseURL(m.URL); err != nil {
			key, allowed := envKey("URL")
			return &ConfigError{Var: key, Value: mqtt.RedactURL(m.URL), Allowed: allowed, Why: err.Error()}
		}
	}
	if err := mqtt.ValidatePrefix(m.TopicPrefix); err != nil {
		return bad("TopicPrefix", err.Error())
	}
	if m.DiscoveryPrefix != "" {
		if err := mqtt.ValidatePrefix(m.DiscoveryPrefix); err != nil {
			return bad("DiscoveryPrefix", err.Error())
		}
	}
	if m.AlertOffDelay <= 0 {
		return bad("AlertOffDelay", "must be positive")
	}
	return nil
}

// validHost accepts an IP address (IPv6 without brackets) or a DNS name:
// letters, digits, '-', '_' and dots, at most 253 bytes. Anything else
// would make a listen address that net cannot parse.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// namedLevel reports whether l is one of the four levels the setting
// allows; slog also parses offsets such as WARN+2.
func namedLevel(l slog.Level) bool {
	switch l {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
		return true
	}
	return false
}

// Addr is the listen address.
func (c *Config) Addr() string { return net.JoinHostPort(c.API.Host, fmt.Sprint(c.API.Port)) }

// envKey finds the variable and allowed text of a Config field by Go name.
func envKey(field string) (key, allowed string) {
	var walk func(t reflect.Type, prefix string) bool
	walk = func(t reflect.Type, prefix string) bool {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
				if walk(f.Type, prefix+f.Tag.Get("envPrefix")) {
					return true
				}
				continue
			}
			if f.Name == field {
				key, allowed = prefix+f.Tag.Get("env"), f.Tag.Get("allowed")
				return true
			}
		}
		return false
	}
	if !walk(reflect.TypeOf(Config{}), "") {
		return field, ""
	}
	return key, allowed
}

// environMap turns os.Environ() into a map.
func environMap(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	return m
}

// fieldError names a Config field and why its value is refused.
type fieldError struct{ field, why string }

// validateCluster checks the cluster settings that matter only when
// cluster mode is on (the URL is set): the files must exist, the stream
// name must be one JetStream takes, and the store must be on disk (a
// node's view outlives the process: memory:// would rebuild it from the
// stream at every start).
func (c *Config) validateCluster() *fieldError {
	cl := c.Cluster
	if strings.TrimSpace(cl.NATSURL) == "" {
		return nil
	}
	for _, u := range strings.Split(cl.NATSURL, ",") {
		u = strings.TrimSpace(u)
		if i := strings.Index(u, "://"); u == "" || i >= 0 && !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u[:i]) {
			return &fieldError{"NATSURL", fmt.Sprintf("%q is not a NATS URL (nats://host:4222, tls://…)", u)}
		}
	}
	if !cluster.ValidStreamName(cl.Stream) {
		return &fieldError{"Stream", ""}
	}
	for _, f := range []struct{ field, path string }{{"CredsFile", cl.CredsFile}, {"TLSCAFile", cl.TLSCAFile}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			return &fieldError{f.field, "no such file"}
		} else if st.IsDir() {
			return &fieldError{f.field, "is a directory"}
		}
	}
	if _, mem, _ := eventlog.ParseURL(c.Events.DBURL); mem {
		return &fieldError{"DBURL", "cluster mode keeps each node's views on disk: use a pebble:// URL"}
	}
	return nil
}
