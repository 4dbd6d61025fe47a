package mqtt_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/securevision/events/internal/mqtt"
)

func TestEscapeID(t *testing.T) {
	for in, want := range map[string]string{
		"camera_driveway": "camera_driveway",
		"cam1":            "cam1",
		"Front Door":      "Front-20Door",
		"cam-1":           "cam-2d1",
		"a/b+c#d":         "a-2fb-2bc-23d",
		"caméra":          "cam-c3-a9ra",
		"-2d":             "-2d2d",
		"":                "",
	} {
		if got := mqtt.EscapeID(in); got != want {
			t.Errorf("EscapeID(%q) = %q, want %q", in, got, want)
		}
	}
	// Ids that a lossy scheme (dropping or replacing characters) would
	// merge stay apart.
	seen := map[string]string{}
	for _, id := range []string{"a b", "a_b", "a-b", "a/b", "a-20b", "a--20b", "a.b", "A b"} {
		e := mqtt.EscapeID(id)
		if prev, ok := seen[e]; ok {
			t.Errorf("%q and %q both escape to %q", prev, id, e)
		}
		seen[e] = id
	}
	for _, bad := range []string{"a-2", "a-zz", "a-41", "a b", "a-2D"} {
		if _, err := mqtt.UnescapeID(bad); err == nil {
			t.Errorf("UnescapeID(%q) accepted", bad)
		}
	}
}

// FuzzEscapeID: every id escapes to [a-zA-Z0-9_-] only (a valid MQTT
// topic level and Home Assistant id) and reads back to itself, so no two
// ids share an escaped form.
func FuzzEscapeID(f *testing.F) {
	for _, s := range []string{"camera_driveway", "Front Door", "cam-1", "a/b+c#d\x00", "caméra", "-2d", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		e := mqtt.EscapeID(id)
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				t.Fatalf("EscapeID(%q) = %q holds %q", id, e, c)
			}
		}
		back, err := mqtt.UnescapeID(e)
		if err != nil || back != id {
			t.Fatalf("UnescapeID(EscapeID(%q)) = %q, %v", id, back, err)
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"securevision", "home/securevision", "homeassistant", "a b", "ünïcode"} {
		if err := mqtt.ValidatePrefix(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/+", "#", "a\x00b", "$SYS", "/a", "a/", "a//b", "\xff", "a\nb", strings.Repeat("a", 1025)} {
		if err := mqtt.ValidatePrefix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]mqtt.Broker{
		"mqtt://localhost":        {Server: "tcp://localhost:1883", Host: "localhost:1883"},
		"mqtt://10.0.0.2:1884":    {Server: "tcp://10.0.0.2:1884", Host: "10.0.0.2:1884"},
		"mqtts://broker.example/": {Server: "ssl://broker.example:8883", Host: "broker.example:8883", TLS: true},
		"mqtts://[::1]:8884":      {Server: "ssl://[::1]:8884", Host: "[::1]:8884", TLS: true},
	} {
		got, err := mqtt.ParseURL(in)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://h", "tcp://h:1883", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://h:x",
		"mqtt://u:secret@h", "mqtt://h/topic", "mqtt://h?x=1", "mqtt:h", "ws://h", "h:1883"} {
		if _, err := mqtt.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	if r := mqtt.RedactURL("mqtt://u:secret@h"); strings.Contains(r, "secret") {
		t.Errorf("RedactURL kept the password: %s", r)
	}
	if r := mqtt.RedactURL("mqtt://u:sec ret@h:%zz"); strings.Contains(r, "sec") || !utf8.ValidString(r) {
		t.Errorf("RedactURL of an unparsable URL: %s", r)
	}
}
