package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securevision/events/internal/mqtt"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/testbin"
)

// waitFor bounds every poll of the tests: generous, because the machine
// running them may be busy; a poll that succeeds returns at once.
const waitFor = 60 * time.Second

// broker is a real Mosquitto started by the test on a free loopback port,
// with persistence on (so that a persistent subscriber's queue survives a
// restart of the broker) and no limit on queued messages.
type broker struct {
	t    *testing.T
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
	logs *testbin.LockedBuffer
	done chan struct{}
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not found (make deps installs Debian's mosquitto): MQTT broker test NOT RUN")
		}
	}
	port, err := testbin.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, bin: bin, dir: t.TempDir(), Port: port, logs: &testbin.LockedBuffer{}}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
max_queued_messages 0
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
`, port, b.dir)
	if os.Geteuid() == 0 {
		// Started as root, Mosquitto drops to the "mosquitto" user unless
		// told otherwise, and that user cannot write the test's directory.
		conf += "user root\n"
	}
	if err := os.WriteFile(filepath.Join(b.dir, "mosquitto.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Start()
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.logs.String())
		}
	})
	return b
}

// Start starts the broker (again, on the same port) and waits until it
// accepts connections.
func (b *broker) Start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("mosquitto exited: %s", b.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto does not accept connections: %v", err)
		}
	}
}

// Stop stops the broker with SIGTERM (it saves its persistent state) and
// waits for it to exit. Stopping a stopped broker does nothing.
func (b *broker) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(waitFor):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

func (b *broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }
func (b *broker) URL() string  { return "mqtt://" + b.Addr() }

// msg is one message a subscriber received.
type msg struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// subscriber is a test MQTT client that records what it receives, in
// order. persistent subscribers keep their session (clean session off,
// fixed client id) so that the broker queues for them while they are
// away, and reconnect by themselves.
type subscriber struct {
	cli paho.Client
	mu  sync.Mutex
	got []msg
}

func subscribe(t *testing.T, b *broker, id string, persistent bool, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{}
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(id).
		SetCleanSession(!persistent).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetResumeSubs(true).SetOrderMatters(true)
	handler := func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.got = append(s.got, msg{m.Topic(), slices.Clone(m.Payload()), m.Retained()})
		s.mu.Unlock()
	}
	if persistent {
		o.SetDefaultPublishHandler(handler)
	}
	s.cli = paho.NewClient(o)
	if tok := s.cli.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	filt := map[string]byte{}
	for _, f := range filters {
		filt[f] = 1
	}
	if len(filt) == 0 {
		t.Cleanup(func() { s.cli.Disconnect(0) })
		return s
	}
	if tok := s.cli.SubscribeMultiple(filt, handler); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.cli.Disconnect(0) })
	return s
}

// messages returns a copy of what was received so far.
func (s *subscriber) messages() []msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// waitUntil polls cond until it holds or waitFor passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventIDs returns the ids of the firehose messages, in arrival order.
func eventIDs(t *testing.T, ms []msg, topic string) []uint64 {
	t.Helper()
	var ids []uint64
	for _, m := range ms {
		if m.Topic != topic {
			continue
		}
		var e struct {
			ID uint64 `json:"id"`
		}
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Fatalf("firehose payload %q: %v", m.Payload, err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// checkFirstOccurrences checks that ids holds every id of want, and that
// the first occurrences come in increasing order (duplicates are allowed:
// delivery is at least once).
func checkFirstOccurrences(t *testing.T, ids []uint64, want []uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	var first []uint64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			first = append(first, id)
		}
	}
	for i := 1; i < len(first); i++ {
		if first[i] <= first[i-1] {
			t.Fatalf("first occurrences out of order at %d: %d after %d", i, first[i], first[i-1])
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("event %d never arrived (%d distinct of %d)", id, len(seen), len(want))
		}
	}
}

// hasAll reports whether ids holds every id in [lo, hi].
func hasAll(ids []uint64, lo, hi uint64) bool {
	seen := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for id := lo; id <= hi; id++ {
		if !seen[id] {
			return false
		}
	}
	return true
}

func idRange(lo, hi uint64) []uint64 {
	var r []uint64
	for id := lo; id <= hi; id++ {
		r = append(r, id)
	}
	return r
}

// startPublisher starts a publisher over st and subscribes it to the
// commit bus; it stops at cleanup (before the store closes: cleanups run
// last-registered first).
func startPublisher(t *testing.T, st *storetest.Store, o mqtt.Options) *mqtt.Publisher {
	t.Helper()
	o.Log = st.Log
	if o.Registerer == nil {
		o.Registerer = st.Reg
	}
	p, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	unsub := st.Subscribe(p.Notify)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unsub()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p
}
