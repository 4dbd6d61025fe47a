// Package natstest runs real NATS JetStream clusters inside the process,
// on loopback with their stores in a directory, for cluster mode's tests
// and benchmarks (the nats-server module, not a mock). A server can be
// killed and restarted with its store, as an operator would after a
// crash.
//
// Kill is the server's Shutdown: connections close and the server stops
// answering at once, which is what clients and the other servers see
// when a machine dies; what it does not simulate is losing writes the
// server's file store had not flushed (JetStream's R3 quorum, not one
// server's disk, is what keeps acknowledged messages).
package natstest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is n JetStream servers routed to each other.
type Cluster struct {
	dir string
	mu  sync.Mutex
	// opts[i] are server i's options (fixed ports, its store directory);
	// srv[i] is nil while it is down.
	opts []*server.Options
	srv  []*server.Server
}

// readyWait bounds the wait for a server to accept clients and for the
// cluster to elect its JetStream meta leader.
const readyWait = 30 * time.Second

// Start runs n clustered JetStream servers with their stores under dir.
func Start(dir string, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for i := 0; i < n; i++ {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &Cluster{dir: dir, srv: make([]*server.Server, n)}
	for i := 0; i < n; i++ {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			// Bounds for a test machine; the stream uses file storage.
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  8 << 30,
			Cluster: server.ClusterOpts{
				Name: "securevision-test",
				Host: "127.0.0.1",
				Port: ports[n+i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:  true,
			NoSigs: true,
		})
	}
	if n == 1 {
		// One server is not a cluster: plain JetStream.
		c.opts[0].Cluster, c.opts[0].Routes = server.ClusterOpts{}, nil
	}
	for i := 0; i < n; i++ {
		if err := c.startLocked(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitJetStream(readyWait); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// freePorts finds n free loopback ports (they are free when returned;
// another process could take one before the server binds it, which makes
// Start fail rather than misbehave).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) startLocked(i int) error {
	o := *c.opts[i] // the server keeps and changes its options
	if len(c.opts) > 1 {
		o.Routes = server.RoutesFromStr(routesString(c.opts))
	}
	s, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("natstest: server %d: %w", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(readyWait) {
		s.Shutdown()
		return fmt.Errorf("natstest: server %d not ready within %s", i+1, readyWait)
	}
	c.srv[i] = s
	return nil
}

func routesString(opts []*server.Options) string {
	var r []string
	for _, o := range opts {
		r = append(r, fmt.Sprintf("nats://127.0.0.1:%d", o.Cluster.Port))
	}
	return strings.Join(r, ",")
}

// URLs is the comma-separated client URLs of every server, up or down
// (a client given them all reconnects to whichever is up).
func (c *Cluster) URLs() string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(u, ",")
}

// N is the number of servers.
func (c *Cluster) N() int { return len(c.opts) }

// Kill stops server i at once (see the package doc).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.srv[i]
	c.srv[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts server i again on its ports and store.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv[i] != nil {
		return nil
	}
	return c.startLocked(i)
}

// StreamLeader returns the index of the server that leads stream in the
// global account, -1 if none does.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.srv {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitJetStream waits until the servers that are up agree on a JetStream
// meta leader.
func (c *Cluster) WaitJetStream(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		leader, current, up := false, 0, 0
		for _, s := range c.srv {
			if s == nil {
				continue
			}
			up++
			if !s.JetStreamIsClustered() && s.JetStreamEnabled() {
				leader = true
				current++
				continue
			}
			if s.JetStreamIsLeader() {
				leader = true
			}
			if s.JetStreamIsCurrent() {
				current++
			}
		}
		c.mu.Unlock()
		if leader && current == up {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("natstest: no JetStream meta leader within " + d.String())
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for i := range c.srv {
		c.Kill(i)
	}
}
