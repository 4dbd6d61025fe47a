package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/testbin"
)

// TestMQTTConfig: defaults, the discovery prefix's empty value (off),
// and refusals on one line that never show a password.
func TestMQTTConfig(t *testing.T) {
	c, err := LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	m := c.MQTT
	if m.URL != "" || m.TopicPrefix != "securevision" || m.DiscoveryPrefix != "homeassistant" || m.AlertOffDelay != 30*time.Second {
		t.Fatalf("defaults: %+v", m)
	}
	c, err = LoadConfig(map[string]string{
		"SECUREVISION__MQTT__URL":              "mqtts://broker.example",
		"SECUREVISION__MQTT__DISCOVERY_PREFIX": "",
		"SECUREVISION__MQTT__TOPIC_PREFIX":     "home/sv",
	})
	if err != nil || c.MQTT.DiscoveryPrefix != "" || c.MQTT.TopicPrefix != "home/sv" {
		t.Fatalf("%+v %v", c.MQTT, err)
	}
	for _, tc := range []struct{ key, val, want string }{
		{"SECUREVISION__MQTT__URL", "http://broker:1883", `scheme "http" is not mqtt or mqtts`},
		{"SECUREVISION__MQTT__URL", "tcp://broker:1883", "mqtt://host[:port] or mqtts://host[:port]"},
		{"SECUREVISION__MQTT__URL", "mqtt://broker:99999", "port"},
		{"SECUREVISION__MQTT__URL", "mqtt://", "no host"},
		{"SECUREVISION__MQTT__TOPIC_PREFIX", "a/#", "wildcard"},
		{"SECUREVISION__MQTT__TOPIC_PREFIX", "$SYS", "reserved"},
		{"SECUREVISION__MQTT__DISCOVERY_PREFIX", "ha/", "empty topic level"},
		{"SECUREVISION__MQTT__ALERT_OFF_DELAY", "0s", "positive"},
		{"SECUREVISION__MQTT__ALERT_OFF_DELAY", "soon", "positive Go duration"},
	} {
		_, err := LoadConfig(map[string]string{tc.key: tc.val})
		if err == nil {
			t.Errorf("%s=%q accepted", tc.key, tc.val)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.key) || !strings.Contains(msg, fmt.Sprintf("%q", tc.val)) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s=%q: %q", tc.key, tc.val, msg)
		}
	}
	_, err = LoadConfig(map[string]string{"SECUREVISION__MQTT__URL": "mqtt://user:hunter2@broker"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "SECUREVISION__MQTT__USERNAME") {
		t.Fatalf("credentials in the URL: %v", err)
	}
}

// TestServeWithUnreachableBroker: a broker that is not there stops
// neither start-up nor ingest; /health says so under "mqtt" and
// /metrics shows the lag.
func TestServeWithUnreachableBroker(t *testing.T) {
	port, dead := freePort(t), freePort(t)
	environ := []string{
		"SECUREVISION__EVENTS__DB_URL=pebble://" + filepath.Join(t.TempDir(), "events"),
		fmt.Sprintf("SECUREVISION__API__PORT=%d", port),
		fmt.Sprintf("SECUREVISION__MQTT__URL=mqtt://127.0.0.1:%d", dead),
		"SECUREVISION__MQTT__PASSWORD=hunter2",
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testbin.LockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- runServe(ctx, nil, environ, io.Discard, logs) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := http.Get(base + "/health")
		if err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf(`{"type":"plate_read","ts_ms":%d,"frame_source_id":"cam","payload":{"plate_text":"ABC%d","confidence":0.9}}`, time.Now().UnixMilli(), i)
		r, err := http.Post(base+"/ingest", "application/json", strings.NewReader(body))
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("ingest: %v %v", r, err)
		}
		r.Body.Close()
	}
	var h struct {
		OK   bool `json:"ok"`
		MQTT struct {
			Connected bool   `json:"connected"`
			Cursor    uint64 `json:"cursor"`
			Lag       uint64 `json:"lag"`
			LastError string `json:"last_error"`
		} `json:"mqtt"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for h.MQTT.LastError == "" {
		r, err := http.Get(base + "/health")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(r.Body).Decode(&h)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection error in /health: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !h.OK || h.MQTT.Connected || h.MQTT.Cursor != 0 || h.MQTT.Lag != 3 {
		t.Fatalf("health: %+v", h)
	}
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{"securevision_mqtt_connected 0", "securevision_mqtt_lag_events 3"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatal("the MQTT password is in the log")
	}
	if !strings.Contains(logs.String(), "mqtt: cannot connect") {
		t.Fatalf("no connection warning in the log:\n%s", logs.String())
	}
}
