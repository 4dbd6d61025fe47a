package wsfanout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/wstest"
)

// fuzzTimeout bounds every wait of one FuzzFrameHeader input.
const fuzzTimeout = 2 * time.Second

// FuzzFrameHeader sends arbitrary bytes after the handshake (in the same
// write when sameWrite is set, so the server has them buffered when it
// upgrades) on a real connection to a real hub, then half-closes. The
// server must answer with well-formed frames only (pongs, replies, at most
// one close frame with a legitimate code), must not have recovered a panic
// (that would be a bug the recovery hides) and must serve a fresh client
// afterwards. One hub per fuzz worker process. The seeds, the crash's
// reproducer among them, are in testdata/fuzz/FuzzFrameHeader.
func FuzzFrameHeader(f *testing.F) {
	st := storetest.Open(f, storetest.Options{})
	hub, err := New(Options{Log: st.Log, Enabled: true})
	if err != nil {
		f.Fatal(err)
	}
	st.Subscribe(hub.Publish)
	srv := httptest.NewServer(hub)
	addr := strings.TrimPrefix(srv.URL, "http://")
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
		_ = st.Log.Close()
	})

	f.Fuzz(func(t *testing.T, data []byte, sameWrite bool) {
		before := value(hub.m.panics)
		fuzzHostile(t, addr, data, sameWrite)
		// The count is raised before the connection is closed, and
		// fuzzHostile has seen it closed.
		if n := value(hub.m.panics) - before; n != 0 {
			t.Fatalf("the server recovered %v panics (see its log)", n)
		}
		fuzzFresh(t, addr)
	})
}

// fuzzDial connects, writes the handshake (and extra in the same write)
// and reads the 101 response.
func fuzzDial(t *testing.T, addr string, extra []byte) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, fuzzTimeout)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	_ = conn.SetDeadline(time.Now().Add(fuzzTimeout))
	if _, err := conn.Write(append(handshake(addr), extra...)); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		conn.Close()
		t.Fatalf("handshake: %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			conn.Close()
			t.Fatalf("handshake headers: %v", err)
		}
		if line == "\r\n" {
			return conn, br
		}
	}
}

// fuzzHostile sends data, half-closes and checks everything the server
// sends until it hangs up.
func fuzzHostile(t *testing.T, addr string, data []byte, sameWrite bool) {
	var conn *net.TCPConn
	var br *bufio.Reader
	if sameWrite {
		conn, br = fuzzDial(t, addr, data)
	} else {
		conn, br = fuzzDial(t, addr, nil)
		// The server may already have hung up on a prefix of data.
		_, _ = conn.Write(data)
	}
	defer conn.Close()
	_ = conn.CloseWrite()
	out, err := io.ReadAll(br)
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("the server did not hang up within %s of the end of the input", fuzzTimeout)
	case err != nil && !reset:
		t.Fatalf("reading the server: %v", err)
	}
	closed := false
	for len(out) > 0 {
		if closed {
			t.Fatalf("%d bytes after the close frame", len(out))
		}
		op, payload, rest, ok := parseServerFrame(out)
		if !ok {
			if reset {
				return // the reset may have cut the last frame
			}
			t.Fatalf("malformed server frame: % x", out[:min(len(out), 16)])
		}
		out = rest
		switch op {
		case opPong:
		case opText:
			if !bytes.Equal(payload, pongJSON) && !bytes.Equal(payload, errorJSON) {
				t.Fatalf("unexpected text message %q", payload)
			}
		case opClose:
			closed = true
			if len(payload) == 0 {
				break // gws echoes a close frame without a code
			}
			if len(payload) < 2 {
				t.Fatalf("close payload % x", payload)
			}
			switch code := binary.BigEndian.Uint16(payload); {
			case code == 1000, code == CloseProtocolError, code == 1007, code == CloseMessageTooLarge:
			case code >= 3000 && code <= 4999: // the client's own code, echoed
			default:
				t.Fatalf("close code %d %q", code, payload[2:])
			}
		default:
			t.Fatalf("server frame with opcode %d", op)
		}
	}
}

// parseServerFrame splits one server frame off b: final, no reserved bits,
// unmasked.
func parseServerFrame(b []byte) (op byte, payload, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x70 != 0 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
		return 0, nil, nil, false
	}
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, nil, false
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, nil, false
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if n > uint64(len(b)-h) {
		return 0, nil, nil, false
	}
	end := h + int(n)
	return b[0] & 0x0f, b[h:end], b[end:], true
}

// fuzzFresh checks that a new client is served: its ping is answered.
func fuzzFresh(t *testing.T, addr string) {
	conn, br := fuzzDial(t, addr, nil)
	defer conn.Close()
	c := wstest.NewConn(conn, br)
	if err := c.Send(opText, []byte("ping")); err != nil {
		t.Fatalf("fresh client: %v", err)
	}
	fr, err := c.ReadFrame(fuzzTimeout)
	if err != nil || fr.Op != opText || !bytes.Equal(fr.Payload, pongJSON) {
		t.Fatalf("fresh client: ping answered %d %q, %v", fr.Op, fr.Payload, err)
	}
}
