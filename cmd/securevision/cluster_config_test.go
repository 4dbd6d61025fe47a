package main

import (
	"fmt"
	"strings"
	"testing"
)

// Cluster settings are refused with one line naming the variable; the
// ones that matter only in cluster mode are checked only with a URL.
func TestClusterConfig(t *testing.T) {
	url := "nats://127.0.0.1:4222"
	cases := []struct {
		env       map[string]string
		key, want string
	}{
		{map[string]string{"SECUREVISION__CLUSTER__REPLICAS": "6"}, "SECUREVISION__CLUSTER__REPLICAS", "an integer from 1 to 5"},
		{map[string]string{"SECUREVISION__CLUSTER__REPLICAS": "0"}, "SECUREVISION__CLUSTER__REPLICAS", "an integer from 1 to 5"},
		{map[string]string{"SECUREVISION__CLUSTER__NATS_URL": url, "SECUREVISION__CLUSTER__CREDS_FILE": "/nonexistent/x.creds"}, "SECUREVISION__CLUSTER__CREDS_FILE", "no such file"},
		{map[string]string{"SECUREVISION__CLUSTER__NATS_URL": url, "SECUREVISION__CLUSTER__TLS_CA_FILE": "/nonexistent/ca.pem"}, "SECUREVISION__CLUSTER__TLS_CA_FILE", "no such file"},
		{map[string]string{"SECUREVISION__CLUSTER__NATS_URL": url, "SECUREVISION__CLUSTER__STREAM": "a.b"}, "SECUREVISION__CLUSTER__STREAM", "letters, digits"},
		{map[string]string{"SECUREVISION__CLUSTER__NATS_URL": "http://x:4222"}, "SECUREVISION__CLUSTER__NATS_URL", "not a NATS URL"},
		{map[string]string{"SECUREVISION__CLUSTER__NATS_URL": url, "SECUREVISION__EVENTS__DB_URL": "memory://"}, "SECUREVISION__EVENTS__DB_URL", "use a pebble:// URL"},
	}
	for _, tc := range cases {
		_, err := LoadConfig(tc.env)
		if err == nil {
			t.Errorf("%v accepted", tc.env)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.key) || !strings.Contains(msg, fmt.Sprintf("%q", tc.env[tc.key])) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: %q", tc.env, msg)
		}
	}
	// Without a URL the mode is off and its files are not looked at.
	c, err := LoadConfig(map[string]string{"SECUREVISION__CLUSTER__CREDS_FILE": "/nonexistent/x.creds"})
	if err != nil || clusterOptions(c) != nil {
		t.Fatalf("single node: %v %v", err, clusterOptions(c))
	}
	c, err = LoadConfig(map[string]string{"SECUREVISION__CLUSTER__NATS_URL": url + ",nats://127.0.0.1:4223"})
	if err != nil {
		t.Fatal(err)
	}
	if o := clusterOptions(c); o == nil || o.Stream != "SECUREVISION_EVENTS" || o.Replicas != 3 || o.URLs != url+",nats://127.0.0.1:4223" {
		t.Fatalf("cluster options %+v", o)
	}
}
