package wsfanout

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securevision/events/internal/wstest"
)

// handshake is a client opening handshake written out by hand (the key is
// RFC 6455's example; its accept value is below), so a test controls every
// byte that reaches the server.
const (
	handshakeKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	handshakeAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func handshake(host string) []byte {
	return []byte("GET /stream HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + handshakeKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")
}

// dialHand opens a TCP connection, writes the handshake followed by extra
// in the same write, and reads the 101 response line by line.
func dialHand(t testing.TB, addr string, extra []byte) *wstest.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(append(handshake(addr), extra...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		t.Fatalf("handshake: status %q, %v", status, err)
	}
	accepted := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake headers: %v", err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if strings.EqualFold(k, "Sec-WebSocket-Accept") && strings.TrimSpace(v) == handshakeAccept {
			accepted = true
		}
	}
	if !accepted {
		t.Fatal("handshake: no valid Sec-WebSocket-Accept")
	}
	_ = conn.SetDeadline(time.Time{})
	return wstest.NewConn(conn, br)
}

// theReproducer is the frame that crashed the server: a text frame whose
// 64-bit payload length has the top bit set, then a mask key.
var theReproducer = append(append([]byte{0x81, 0xFF}, bytes.Repeat([]byte{0xFF}, 8)...), 0x11, 0x22, 0x33, 0x44)

// header builds a masked client frame header claiming length n (with the
// 64-bit length form when long is set), followed by a mask key.
func header(op byte, n uint64, long bool) []byte {
	b := []byte{0x80 | op}
	switch {
	case long || n > 0xFFFF:
		b = append(b, 0x80|127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	case n > 125:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|byte(n))
	}
	return append(b, 1, 2, 3, 4)
}

// maskedPing is a complete masked protocol ping carrying "hb".
var maskedPing = []byte{0x89, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'b' ^ 2}

// expectClosed reads until the server's close frame and then the end of
// the connection; it returns the close code.
func expectClosed(t *testing.T, c *wstest.Conn) uint16 {
	t.Helper()
	var code uint16
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.Op == opClose {
			code, _ = f.CloseCode()
			break
		}
	}
	// Then the server hangs up: end of stream (or a reset), not a timeout.
	_ = c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after the close frame: read %d bytes, %v", n, err)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("after the close frame: %v", err)
	}
	return code
}

// expectServing checks that the server still works for a new client: a
// ping is answered and a new event is delivered.
func expectServing(t *testing.T, e *testEnv) {
	t.Helper()
	c, resp := dialRaw(t, e.addr, "", 0)
	if c == nil {
		t.Fatalf("server refused a new client: %s", resp.Status)
	}
	if err := c.Send(opText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil || f.Op != opText || string(f.Payload) != string(pongJSON) {
		t.Fatalf("new client: ping answered %d %q, %v", f.Op, f.Payload, err)
	}
	id := e.appendN(1, "cam1")
	f, err = c.ReadFrame(5 * time.Second)
	if err != nil || parseMsg(t, f.Payload).ID != id {
		t.Fatalf("new client: event %d not delivered: %q, %v", id, f.Payload, err)
	}
}

// TestHostileFrameLength is the regression test of the crash: a frame
// header claiming a 64-bit length with the top bit set made gws slice with
// a negative length and panic in its read goroutine, killing the process.
// Now every header claiming more than the inbound cap is refused before
// gws parses it: 1002 for the top bit, 1009 for a length above the cap.
func TestHostileFrameLength(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	max := uint64(DefaultMaxMessageBytes)
	cases := []struct {
		name string
		// with the handshake: the frame reaches the server in the same
		// segment and is already buffered when the connection is upgraded.
		withHandshake bool
		frames        []byte
		split         bool // one write per byte
		want          uint16
	}{
		{name: "reproducer", frames: theReproducer, want: 1002},
		{name: "reproducer with handshake", withHandshake: true, frames: theReproducer, want: 1002},
		{name: "reproducer byte by byte", frames: theReproducer, split: true, want: 1002},
		{name: "reproducer after a ping", frames: append(append([]byte(nil), maskedPing...), theReproducer...), want: 1002},
		{name: "top bit only", frames: header(0x1, 1<<63, true), want: 1002},
		{name: "binary top bit", frames: header(0x2, 1<<63|5, true), want: 1002},
		{name: "continuation top bit", frames: header(0x0, ^uint64(0), true), want: 1002},
		{name: "64-bit above the cap", frames: header(0x1, 1<<62, true), want: 1009},
		{name: "64-bit cap+1", frames: header(0x1, max+1, true), want: 1009},
		{name: "16-bit cap+1", frames: header(0x1, max+1, false), want: 1009},
		{name: "ping top bit", frames: header(0x9, 1<<63, true), want: 1002},
		{name: "close top bit", frames: header(0x8, 1<<63, true), want: 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *wstest.Conn
			if tc.withHandshake {
				c = dialHand(t, e.addr, tc.frames)
			} else {
				c = dialHand(t, e.addr, nil)
				if tc.split {
					// The server hangs up once the length is complete:
					// writing the mask key may then fail.
					for _, b := range tc.frames {
						if _, err := c.NetConn().Write([]byte{b}); err != nil {
							break
						}
						time.Sleep(time.Millisecond)
					}
				} else if _, err := c.NetConn().Write(tc.frames); err != nil {
					t.Fatal(err)
				}
			}
			if code := expectClosed(t, c); code != tc.want {
				t.Fatalf("close code %d, want %d", code, tc.want)
			}
			expectServing(t, e)
		})
	}
	if n := e.hub.Clients(); n > 1 {
		// Every hostile stream is gone; at most the last checker remains
		// (its cleanup runs after this function).
		waitFor(t, 5*time.Second, "hostile streams unregistered", func() bool { return e.hub.Clients() <= 1 })
	}
}
