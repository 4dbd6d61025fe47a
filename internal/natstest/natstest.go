// Package natstest runs real NATS JetStream clusters on loopback for
// cluster mode's tests and benchmarks: nats-server processes, built once
// per process from the nats-server module this repository pins (go build,
// from the module cache: nothing to install), each with its own store
// under a directory. Kill sends SIGKILL, as when a machine dies: no
// leadership hand-over, no flush; the other servers must elect a new
// stream leader. Restart starts the server again on its ports and store.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// serverModule is what Binary builds; go.mod pins its version (a tool
// directive, so that go mod tidy keeps it).
const serverModule = "github.com/nats-io/nats-server/v2"

// readyWait bounds the wait for a server to accept clients and for the
// cluster to elect its JetStream meta leader.
const readyWait = 60 * time.Second

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary builds nats-server once per process (NATS_SERVER, when set,
// names a binary to use instead) and returns its path.
func Binary() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("NATS_SERVER"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "natstest-")
		if err != nil {
			binErr = err
			return
		}
		out := filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", out, serverModule)
		if b, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("natstest: go build %s: %v: %s", serverModule, err, b)
			return
		}
		binPath = out
	})
	return binPath, binErr
}

// Cluster is n JetStream servers routed to each other.
type Cluster struct {
	bin   string
	dir   string
	ports []int // client ports, then cluster ports
	mu    sync.Mutex
	procs []*exec.Cmd     // nil while down
	done  []chan struct{} // closed when the process exits
}

// Start runs n clustered JetStream servers with their stores under dir
// (one server is plain JetStream, not a cluster).
func Start(dir string, n int) (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir, ports: ports, procs: make([]*exec.Cmd, n), done: make([]chan struct{}, n)}
	for i := 0; i < n; i++ {
		if err := c.start(i); err != nil {
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

// freePorts finds n free loopback ports (free when returned: another
// process could take one first, which makes Start fail, not misbehave).
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

// N is the number of servers.
func (c *Cluster) N() int { return len(c.procs) }

// Dir is the directory holding the servers' stores (one folder each).
func (c *Cluster) Dir() string { return c.dir }

func (c *Cluster) args(i int) []string {
	n := c.N()
	args := []string{
		"--name", "n" + strconv.Itoa(i+1), "--addr", "127.0.0.1", "--port", strconv.Itoa(c.ports[i]),
		"--jetstream", "--store_dir", filepath.Join(c.dir, "n"+strconv.Itoa(i+1)),
	}
	if n > 1 {
		var routes []string
		for j := 0; j < n; j++ {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(c.ports[n+j]))
		}
		args = append(args, "--cluster_name", "securevision-test",
			"--cluster", "nats://127.0.0.1:"+strconv.Itoa(c.ports[n+i]), "--routes", strings.Join(routes, ","))
	}
	return args
}

// start starts server i and waits until it accepts connections.
func (c *Cluster) start(i int) error {
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("n%d.log", i+1)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, c.args(i)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("natstest: start server %d: %w", i+1, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.procs[i], c.done[i] = cmd, done
	c.mu.Unlock()
	addr := "127.0.0.1:" + strconv.Itoa(c.ports[i])
	deadline := time.Now().Add(readyWait)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("natstest: server %d exited at start (log %s)", i+1, filepath.Join(c.dir, fmt.Sprintf("n%d.log", i+1)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Kill(i)
			return fmt.Errorf("natstest: server %d not accepting connections within %s", i+1, readyWait)
		}
	}
}

// URLs is the comma-separated client URLs of every server, up or down
// (a client given them all reconnects to whichever is up).
func (c *Cluster) URLs() string {
	var u []string
	for i := 0; i < c.N(); i++ {
		u = append(u, "nats://127.0.0.1:"+strconv.Itoa(c.ports[i]))
	}
	return strings.Join(u, ",")
}

// Kill sends server i SIGKILL and waits for it to end.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	cmd, done := c.procs[i], c.done[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// Restart starts server i again on its ports and store.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	up := c.procs[i] != nil
	c.mu.Unlock()
	if up {
		return nil
	}
	return c.start(i)
}

// client connects to the servers that are up.
func (c *Cluster) client() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.URLs(), nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// StreamLeader returns the index of the server that leads stream, -1 if
// none does (or it cannot be asked).
func (c *Cluster) StreamLeader(stream string) int {
	nc, js, err := c.client()
	if err != nil {
		return -1
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return -1
	}
	name := info.Cluster.Leader
	if i, err := strconv.Atoi(strings.TrimPrefix(name, "n")); err == nil && i >= 1 && i <= c.N() {
		return i - 1
	}
	return -1
}

// WaitJetStream waits until JetStream answers on the servers that are up
// (a meta leader is elected).
func (c *Cluster) WaitJetStream(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		nc, js, err := c.client()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("natstest: JetStream not ready within " + d.String() + ": " + fmt.Sprint(last))
}

// Shutdown kills every server.
func (c *Cluster) Shutdown() {
	for i := range c.procs {
		c.Kill(i)
	}
}
