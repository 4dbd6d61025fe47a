package main

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/securevision/events/ingest/vision"
)

// configFuzzKeys are the variables FuzzLoadConfig sets, in argument order.
var configFuzzKeys = []string{
	"SECUREVISION__API__HOST", "SECUREVISION__API__PORT", "SECUREVISION__API__WS_ENABLED",
	"SECUREVISION__API__CORS_ORIGINS", "SECUREVISION__API__RATE_LIMIT_PER_MINUTE",
	"SECUREVISION__EVENTS__DB_URL", "SECUREVISION__EVENTS__RETENTION_DAYS",
	"SECUREVISION__EVENTS__CLEANUP_INTERVAL", "SECUREVISION__INGEST__FPS",
	"SECUREVISION__INGEST__COOLDOWN",
}

// FuzzLoadConfig sets random values (an empty value leaves the variable
// unset) and checks that LoadConfig never panics, that every refusal is one
// line naming a SECUREVISION__ variable, and that an accepted
// configuration is within the documented ranges.
func FuzzLoadConfig(f *testing.F) {
	f.Add("127.0.0.1", "8000", "true", "", "0", "pebble://data/events", "30", "1h", "5", "10s")
	f.Add("::1", "65535", "false", "*,https://a.example", "60", "memory://", "0", "1m", "60", "0s")
	f.Add(" ", "70000", "maybe", "example.com", "-1", "sqlite:///x.db", "-1", "0s", "0", "-1s")
	f.Add("h", "0x1F", "1", "http://a,,", "9999999999999999999", "postgres://x", "1e3", "1y", "NaN", "1.5h")
	f.Add("a\nb", "+80", "T", ",", "07", "pebble://", "00", "-0s", "Inf", "1ns")
	f.Fuzz(func(t *testing.T, host, port, ws, cors, rate, dburl, days, interval, fps, cooldown string) {
		checkLoadConfig(t, configFuzzKeys, host, port, ws, cors, rate, dburl, days, interval, fps, cooldown)
	})
}

// configFuzzKeys2 are the variables FuzzLoadConfigMore sets.
var configFuzzKeys2 = []string{
	"SECUREVISION__API__WS_MAX_CLIENTS", "SECUREVISION__EVENTS__CACHE_MB",
	"SECUREVISION__EVENTS__SOURCE_INDEX", "SECUREVISION__LOG_LEVEL",
	"SECUREVISION__DEBUG__PPROF_ADDR", "SECUREVISION__INGEST__SIMILARITY_THRESHOLD",
}

// FuzzLoadConfigMore is FuzzLoadConfig for the settings added later (a
// second target, so the first one's corpus stays valid).
func FuzzLoadConfigMore(f *testing.F) {
	f.Add("10000", "256", "covering", "INFO", "", "0")
	f.Add("1", "8", "keys", "debug", "127.0.0.1:6060", "1")
	f.Add("0", "7", "KEYS", "verbose", "0.0.0.0:6060", "1.01")
	f.Add("-5", "65537", "", "WARN+2", "[::1]:0", "NaN")
	f.Add("1e3", "0x100", "covering ", "ERROR", "localhost:6060", "-0")
	f.Add("99999999999999999999", "256MB", "both", "-4", "example.com:80", "Inf")
	f.Fuzz(func(t *testing.T, wsmax, cache, srcidx, level, pprof, threshold string) {
		c := checkLoadConfig(t, configFuzzKeys2, wsmax, cache, srcidx, level, pprof, threshold)
		if c == nil {
			return
		}
		if c.API.WSMaxConns < 1 || c.Events.CacheMB < 8 || c.Events.CacheMB > 65536 ||
			(c.Events.SourceIndex != "covering" && c.Events.SourceIndex != "keys") ||
			!(c.Ingest.Threshold >= 0 && c.Ingest.Threshold < 1) {
			t.Fatalf("out-of-range config accepted: %+v", c)
		}
		switch c.LogLevel.String() {
		case "DEBUG", "INFO", "WARN", "ERROR":
		default:
			t.Fatalf("log level %s accepted", c.LogLevel)
		}
		if a := c.Debug.PprofAddr; a != "" {
			h, _, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatalf("pprof address %q accepted: %v", a, err)
			}
			if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("non-loopback pprof address %q accepted", a)
			}
		}
	})
}

// configFuzzKeys3 are the variables FuzzLoadConfigBackup sets.
var configFuzzKeys3 = []string{"SECUREVISION__EVENTS__BACKUP_KEEP", "SECUREVISION__EVENTS__BACKUP_DIR"}

// FuzzLoadConfigBackup is FuzzLoadConfig for the backup settings (a third
// target, so the corpora of the others stay valid).
func FuzzLoadConfigBackup(f *testing.F) {
	f.Add("7", "data/backups")
	f.Add("1", "/var/backups/securevision")
	f.Add("0", "")
	f.Add("-1", "..")
	f.Add("1e3", "b a c k")
	f.Add("99999999999999999999", "x")
	f.Add(" 3", "\x00")
	f.Fuzz(func(t *testing.T, keep, dir string) {
		c := checkLoadConfig(t, configFuzzKeys3, keep, dir)
		if c != nil && c.Events.BackupKeep < 1 {
			t.Fatalf("backup keep %d accepted", c.Events.BackupKeep)
		}
	})
}

// checkLoadConfig sets keys[i] to vals[i] (an empty value leaves it unset)
// and loads. A refusal must be one line naming a SECUREVISION__ variable
// (nil is returned); an accepted configuration must be in the documented
// ranges of every setting, and is returned for the caller's checks.
func checkLoadConfig(t *testing.T, keys []string, vals ...string) *Config {
	t.Helper()
	environ := map[string]string{}
	for i, v := range vals {
		if v != "" {
			environ[keys[i]] = v
		}
	}
	c, err := LoadConfig(environ)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Fatalf("refusal spans lines: %q", msg)
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			if !strings.HasPrefix(ce.Var, "SECUREVISION__") {
				t.Fatalf("refusal names no variable: %q", msg)
			}
		} else if !strings.Contains(msg, "SECUREVISION__") {
			t.Fatalf("refusal names no variable: %q", msg)
		}
		return nil
	}
	if c.API.Port < 1 || c.API.Port > 65535 || c.API.RateLimit < 0 || c.Events.RetentionDays < 0 || c.Events.BackupKeep < 1 ||
		c.Events.CleanupInterval <= 0 || !(c.Ingest.FPS > 0 && c.Ingest.FPS <= vision.MaxFPS) || c.Ingest.Cooldown < 0 {
		t.Fatalf("out-of-range config accepted: %+v", c)
	}
	if _, _, err := net.SplitHostPort(c.Addr()); err != nil {
		t.Fatalf("listen address %q: %v", c.Addr(), err)
	}
	return c
}
