package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/internal/cluster"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/natstest"
)

// waitFor bounds every wait of these tests: generous, because three
// JetStream servers, two API nodes and the race detector share a small
// machine, but never unbounded.
const waitFor = 90 * time.Second

func startNATS(t testing.TB) *natstest.Cluster {
	t.Helper()
	c, err := natstest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// node is one API node's core in cluster mode.
type node struct {
	t    testing.TB
	dir  string
	name string
	urls string
	c    *core.Core
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func openNode(t testing.TB, nc *natstest.Cluster, name string) *node {
	t.Helper()
	n := &node{t: t, dir: filepath.Join(t.TempDir(), name), name: name, urls: nc.URLs()}
	n.open()
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) open() {
	n.t.Helper()
	c, err := core.Open(core.Options{
		URL:        n.dir,
		Logger:     testLogger(n.t),
		Registerer: prometheus.NewRegistry(),
		Cluster: &cluster.Options{
			URLs: n.urls, Name: n.name, Replicas: 3,
			ConnectWait: waitFor, PublishTimeout: 5 * time.Second, ApplyTimeout: waitFor,
		},
	})
	if err != nil {
		n.t.Fatalf("open %s: %v", n.name, err)
	}
	n.c = c
}

func (n *node) close() {
	if n.c != nil {
		if err := n.c.Close(); err != nil {
			n.t.Errorf("close %s: %v", n.name, err)
		}
		n.c = nil
	}
}

// waitApplied waits until the node applied through seq.
func (n *node) waitApplied(seq uint64) {
	n.t.Helper()
	deadline := time.Now().Add(waitFor)
	for n.c.Cluster().Applied() < seq {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s applied %d, want %d, within %s", n.name, n.c.Cluster().Applied(), seq, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dump returns every stored record of the node's log as "id json" lines.
func (n *node) dump() []string {
	n.t.Helper()
	it, err := n.c.Log().NewLogIter(0, ^uint64(0))
	if err != nil {
		n.t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%x", it.Value()))
	}
	return out
}

var bg = context.Background()
