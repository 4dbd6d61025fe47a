package wsfanout_test

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/wstest"
	"github.com/securevision/events/wsfanout"
)

// wsfanout exposes no message-handler function (the handler is gws's
// OnMessage on an unexported type), so FuzzClientMessage drives it over a
// real connection: one hub per fuzz worker process, one stream per input.

var (
	fuzzHubOnce sync.Once
	fuzzHubURL  string
	fuzzHubErr  error
)

func fuzzHub() (string, error) {
	fuzzHubOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsfuzz-")
		if err != nil {
			fuzzHubErr = err
			return
		}
		st, err := storetest.OpenErr(dir, storetest.Options{})
		if err != nil {
			fuzzHubErr = err
			return
		}
		hub, err := wsfanout.New(wsfanout.Options{Log: st.Log, Enabled: true})
		if err != nil {
			fuzzHubErr = err
			return
		}
		st.Subscribe(hub.Publish)
		srv := httptest.NewServer(hub)
		fuzzHubURL = "ws" + strings.TrimPrefix(srv.URL, "http") + "/stream"
	})
	return fuzzHubURL, fuzzHubErr
}

// FuzzClientMessage sends one arbitrary client message (text, binary or
// ping) and checks the answer: "ping" → pong JSON; any other data message
// within the inbound cap → the error JSON with the stream left open;
// above the cap → close 1009; invalid UTF-8 text → close 1007; a
// protocol ping → a pong frame. Then the stream must still answer "ping"
// unless it was closed for one of those reasons.
func FuzzClientMessage(f *testing.F) {
	// op%3: 0 text, 1 binary, 2 protocol ping (see the switch below).
	f.Add(uint8(0), []byte("ping"))
	f.Add(uint8(0), []byte("PING"))
	f.Add(uint8(1), []byte("ping"))
	f.Add(uint8(0), []byte(`{"type":"subscribe","after":0}`))
	f.Add(uint8(0), []byte{0xff, 0xfe})
	f.Add(uint8(2), []byte("hello"))
	f.Add(uint8(0), bytes.Repeat([]byte("a"), wsfanout.DefaultMaxMessageBytes+1))
	f.Add(uint8(0), []byte(""))
	f.Fuzz(func(t *testing.T, op uint8, payload []byte) {
		url, err := fuzzHub()
		if err != nil {
			t.Fatal(err)
		}
		var opcode byte
		switch op % 3 {
		case 0:
			opcode = wstest.OpText
		case 1:
			opcode = wstest.OpBinary
		default:
			opcode = wstest.OpPing
			if len(payload) > 125 {
				payload = payload[:125] // control frames carry at most 125 bytes
			}
		}
		conn, _, err := wstest.Dial(url, wstest.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		if err := conn.Send(opcode, payload); err != nil {
			t.Fatalf("write: %v", err)
		}
		wantClose := uint16(0)
		switch {
		case opcode != wstest.OpPing && len(payload) > wsfanout.DefaultMaxMessageBytes:
			wantClose = 1009
		case opcode == wstest.OpText && !utf8.Valid(payload):
			wantClose = 1007
		}
		// ReadMessage skips pongs: the answer to a protocol ping.
		deadline := time.Now().Add(5 * time.Second)
		if opcode != wstest.OpPing {
			m, err := conn.ReadMessage(time.Until(deadline))
			var ce *wstest.CloseError
			switch {
			case err == nil:
				want := `{"type":"error","detail":"unsupported message; send \"ping\""}`
				if opcode == wstest.OpText && string(payload) == "ping" {
					want = `{"type":"pong","data":"ping"}`
				}
				if wantClose != 0 || string(m) != want {
					t.Fatalf("op %d %q: got %s (want close %d)", opcode, payload, m, wantClose)
				}
			case errors.As(err, &ce):
				if wantClose == 0 || ce.Code != wantClose {
					t.Fatalf("op %d %q (len %d): closed with %v, want close %d", opcode, payload, len(payload), err, wantClose)
				}
				return
			default:
				t.Fatalf("op %d %q: no answer: %v", opcode, payload, err)
			}
		}
		// The stream is still usable.
		if err := conn.SendText([]byte("ping")); err != nil {
			t.Fatalf("write ping: %v", err)
		}
		m, err := conn.ReadMessage(time.Until(deadline))
		var ce *wstest.CloseError
		switch {
		case err == nil:
			if string(m) != `{"type":"pong","data":"ping"}` {
				t.Fatalf("after op %d %q: ping answered %s", opcode, payload, m)
			}
		case errors.As(err, &ce):
			t.Fatalf("after op %d %q: stream closed: %v", opcode, payload, err)
		default:
			t.Fatalf("after op %d %q: ping not answered: %v", opcode, payload, err)
		}
	})
}
