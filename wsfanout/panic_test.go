package wsfanout

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securevision/events/internal/testbin"
	"github.com/securevision/events/internal/wstest"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestConnPanicRecovered: a panic in a connection's reader goroutine (in
// a message callback, under gws's read loop), in its writer goroutine or
// during its upgrade is recovered: the process lives on, the panic is
// counted and logged with its stack, that connection is closed (1011 when
// the stream is open) and the other clients keep working.
func TestConnPanicRecovered(t *testing.T) {
	var panicUpgrade atomic.Bool
	logs := &testbin.LockedBuffer{}
	e := newTestEnv(t, Options{
		Enabled: true,
		Logger:  slogTo(io.MultiWriter(logs, testWriter{t})),
		hooks: &hooks{
			message: func(data []byte) {
				if string(data) == "panic-reader" {
					panic("test: reader panic")
				}
			},
			flush: func(out []byte) {
				// The writer panics on the error reply (other clients
				// send only "ping" and get pongs).
				if bytes.Contains(out, errorJSON) {
					panic("test: writer panic")
				}
			},
			upgraded: func() {
				if panicUpgrade.Load() {
					panic("test: upgrade panic")
				}
			},
		},
	})
	panics := func() float64 { return value(e.hub.m.panics) }

	bystander, _ := dialRaw(t, e.addr, "", 0)
	pingPong := func(c *wstest.Conn, who string) {
		t.Helper()
		if err := c.Send(opText, []byte("ping")); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err == nil && f.Op == opText && parseMsg(t, f.Payload).ID != 0 {
				continue // an event appended earlier
			}
			if err != nil || string(f.Payload) != string(pongJSON) {
				t.Fatalf("%s: ping answered %q, %v", who, f.Payload, err)
			}
			return
		}
	}
	pingPong(bystander, "bystander")

	for i, tc := range []struct {
		goroutine, send string
	}{
		{"reader", "panic-reader"},
		{"writer", "anything else"},
	} {
		c, _ := dialRaw(t, e.addr, "", 0)
		pingPong(c, tc.goroutine+" victim before")
		if err := c.Send(opText, []byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		if code := expectClosed(t, c); code != CloseInternalError {
			t.Fatalf("%s panic: close code %d, want %d", tc.goroutine, code, CloseInternalError)
		}
		if got := panics(); got != float64(i+1) {
			t.Fatalf("%s panic: panics_total %v, want %d", tc.goroutine, got, i+1)
		}
		waitFor(t, 5*time.Second, tc.goroutine+" victim unregistered", func() bool {
			return e.hub.Clients() == 1 && value(e.hub.m.disconnects.WithLabelValues(reasonPanic)) == float64(i+1)
		})
		// The bystander is untouched: pings and events still flow.
		pingPong(bystander, "bystander after "+tc.goroutine+" panic")
		id := e.appendN(1, "cam1")
		f, err := bystander.ReadFrame(5 * time.Second)
		if err != nil || parseMsg(t, f.Payload).ID != id {
			t.Fatalf("bystander after %s panic: event %d: %q, %v", tc.goroutine, id, f.Payload, err)
		}
		if l := logs.String(); !strings.Contains(l, "goroutine="+tc.goroutine) || !strings.Contains(l, "test: "+tc.goroutine+" panic") ||
			!strings.Contains(l, "recoverPanic") {
			t.Fatalf("%s panic not logged with its stack:\n%s", tc.goroutine, l)
		}
	}

	// A panic during the upgrade closes the hijacked socket and frees its
	// connection slot.
	panicUpgrade.Store(true)
	c := dialHand(t, e.addr, nil)
	if _, err := c.ReadFrame(5 * time.Second); err == nil {
		t.Fatal("upgrade panic: the connection stayed open")
	}
	panicUpgrade.Store(false)
	if got := panics(); got != 3 {
		t.Fatalf("upgrade panic: panics_total %v, want 3", got)
	}
	if !strings.Contains(logs.String(), "test: upgrade panic") {
		t.Fatalf("upgrade panic not logged:\n%s", logs.String())
	}
	waitFor(t, 5*time.Second, "connection slots freed", func() bool { return e.hub.active.Load() == 1 })
	expectServing(t, e)
	pingPong(bystander, "bystander at the end")
}

// TestPanicRecoveredUnguarded: the recovery alone, without the frame
// guard, also stops the original crash: gws's panic on a 64-bit length
// with the top bit set closes that connection only.
func TestPanicRecoveredUnguarded(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true, hooks: &hooks{unguarded: true}})
	c := dialHand(t, e.addr, nil)
	if _, err := c.NetConn().Write(theReproducer); err != nil {
		t.Fatal(err)
	}
	if code := expectClosed(t, c); code != CloseInternalError {
		t.Fatalf("close code %d, want %d", code, CloseInternalError)
	}
	if got := value(e.hub.m.panics); got != 1 {
		t.Fatalf("panics_total %v, want 1", got)
	}
	expectServing(t, e)
}
