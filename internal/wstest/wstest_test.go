package wstest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// echo is a gws server (another implementation of the protocol): it
// echoes messages, answers "close" with close 4000, "ping-me" with a
// protocol ping and "split" with a message in three fragments.
type echo struct {
	gws.BuiltinEventHandler
	pinged chan []byte
}

func (e *echo) OnPing(c *gws.Conn, p []byte) {
	e.pinged <- append([]byte(nil), p...)
	_ = c.WritePong(p)
}

func (e *echo) OnPong(_ *gws.Conn, p []byte) { e.pinged <- append([]byte("pong:"), p...) }

func (e *echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	switch s := m.Data.String(); s {
	case "close":
		_ = c.WriteClose(4000, []byte("too slow: resume with after=7"))
	case "ping-me":
		_ = c.WritePing([]byte("p"))
		_ = c.WriteString("after the ping")
	case "split":
		// Fragments written by hand: gws writes whole messages.
		nc := c.NetConn()
		_, _ = nc.Write([]byte{0x01, 3, 'o', 'n', 'e'})
		_, _ = nc.Write([]byte{0x89, 1, 'x'}) // a ping in between
		_, _ = nc.Write([]byte{0x00, 3, 't', 'w', 'o'})
		_, _ = nc.Write([]byte{0x80, 5, 't', 'h', 'r', 'e', 'e'})
	default:
		_ = c.WriteMessage(m.Opcode, m.Bytes())
	}
}

func newServer(t *testing.T) (*httptest.Server, *echo, chan http.Header) {
	t.Helper()
	e := &echo{pinged: make(chan []byte, 8)}
	up := gws.NewUpgrader(e, &gws.ServerOption{})
	headers := make(chan http.Header, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		if r.URL.Query().Get("refuse") != "" {
			http.Error(w, `{"detail":"no"}`, http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return srv, e, headers
}

func dial(t *testing.T, url string, o Options) *Conn {
	t.Helper()
	c, _, err := Dial(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialHeaders(t *testing.T) {
	srv, _, headers := newServer(t)
	// An http:// URL works as well as ws://.
	dial(t, srv.URL+"/stream?after=0", Options{Origin: "http://page.example", Token: "tok",
		Header: http.Header{"X-Extra": {"1"}}})
	h := <-headers
	if h.Get("Origin") != "http://page.example" || h.Get("Authorization") != "Bearer tok" || h.Get("X-Extra") != "1" {
		t.Fatalf("handshake headers: %v", h)
	}
	dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/stream", Options{})
	if h := <-headers; h.Get("Origin") != "" || h.Get("Authorization") != "" {
		t.Fatalf("headers without options: %v", h)
	}
}

func TestDialRefused(t *testing.T) {
	srv, _, _ := newServer(t)
	c, resp, err := Dial(srv.URL+"/stream?refuse=1", Options{})
	var se *StatusError
	if c != nil || resp == nil || !errors.As(err, &se) || se.StatusCode != 401 {
		t.Fatalf("refused handshake: %v %v %v", c, resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"detail"`) {
		t.Fatalf("body %q", b)
	}
	if _, resp, err := Dial("ws://127.0.0.1:1/stream", Options{Timeout: time.Second}); err == nil || resp != nil {
		t.Fatalf("nothing listening: %v %v", resp, err)
	}
}

func TestMessages(t *testing.T) {
	srv, e, _ := newServer(t)
	c := dial(t, srv.URL, Options{})
	if _, err := c.ReadMessage(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("nothing sent: %v, want a timeout", err)
	}
	big := bytes.Repeat([]byte("x"), 70000)
	for _, m := range [][]byte{[]byte("hello"), big, {}} {
		if err := c.SendText(m); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMessage(5 * time.Second)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(m), len(got), err)
		}
	}
	// A protocol ping of ours gets a pong frame.
	if err := c.Ping([]byte("hb")); err != nil {
		t.Fatal(err)
	}
	if p := <-e.pinged; string(p) != "hb" {
		t.Fatalf("server saw ping %q", p)
	}
	if f, err := c.ReadFrame(5 * time.Second); err != nil || f.Op != OpPong || string(f.Payload) != "hb" || !f.Fin {
		t.Fatalf("pong: %+v %v", f, err)
	}
	// ReadMessage answers the server's ping and goes on to the message.
	if err := c.SendText([]byte("ping-me")); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMessage(5 * time.Second); err != nil || string(m) != "after the ping" {
		t.Fatalf("after a ping: %q %v", m, err)
	}
	if p := <-e.pinged; string(p) != "pong:p" {
		t.Fatalf("server got %q, want our pong", p)
	}
	// Fragments are joined, a ping between them answered.
	if err := c.SendText([]byte("split")); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMessage(5 * time.Second); err != nil || string(m) != "onetwothree" {
		t.Fatalf("fragmented: %q %v", m, err)
	}
	// The server's close: code and reason, and our answer.
	if err := c.SendText([]byte("close")); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadMessage(5 * time.Second)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "too slow: resume with after=7" {
		t.Fatalf("close: %v", err)
	}
}

func TestReadLoopAndSendClose(t *testing.T) {
	srv, _, _ := newServer(t)
	c := dial(t, srv.URL, Options{})
	got := make(chan string, 4)
	done := make(chan error, 1)
	go func() { done <- c.ReadLoop(func(m []byte) { got <- string(m) }) }()
	for _, s := range []string{"a", "b"} {
		if err := c.SendText([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if m := <-got; m != s {
			t.Fatalf("got %q, want %q", m, s)
		}
	}
	// Our close is echoed (gws answers with the same code) and ends the
	// loop without a second close from us.
	if err := c.SendClose(1000, "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != 1000 {
			t.Fatalf("loop ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end")
	}
}

// TestTimeoutKeepsPartialFrame: a frame that arrives in pieces across
// timeouts is read whole once complete.
func TestTimeoutKeepsPartialFrame(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	c := NewConn(client, nil)
	defer c.Close()
	go func() {
		_, _ = server.Write([]byte{0x81, 5, 'h', 'e'})
		time.Sleep(100 * time.Millisecond)
		_, _ = server.Write([]byte{'l', 'l', 'o'})
	}()
	if _, err := c.ReadMessage(30 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read: %v, want a timeout", err)
	}
	if m, err := c.ReadMessage(5 * time.Second); err != nil || string(m) != "hello" {
		t.Fatalf("second read: %q %v", m, err)
	}
}

func TestRefusesMaskedAndOversizeFrames(t *testing.T) {
	for name, b := range map[string][]byte{
		"masked":   {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"oversize": {0x81, 126, 0x01, 0x00},
		"rsv":      {0xC1, 0},
	} {
		server, client := net.Pipe()
		c := NewConn(client, nil)
		c.maxFrame = 100
		go func() { _, _ = server.Write(b) }()
		if f, err := c.ReadFrame(5 * time.Second); err == nil {
			t.Errorf("%s: read %+v", name, f)
		}
		server.Close()
		c.Close()
	}
}
