package wsfanout

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// testEnv is a real store on t.TempDir opened by internal/storetest with
// core.Open, the server's own wiring (log, projections as its Indexer,
// ingest), a hub subscribed to the core's commit bus and an httptest
// server.
type testEnv struct {
	t    *testing.T
	log  *eventlog.Log
	view *projections.View
	ing  *ingest.Service
	hub  *Hub
	reg  *prometheus.Registry
	srv  *httptest.Server
	addr string // host:port
}

func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	st := storetest.Open(t, storetest.Options{})
	e := &testEnv{t: t, log: st.Log, view: st.View, ing: st.Ingest, reg: st.Reg}
	opts.Log = st.Log
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	opts.Registerer = e.reg
	var err error
	if e.hub, err = New(opts); err != nil {
		t.Fatal(err)
	}
	st.Subscribe(e.hub.Publish)
	e.srv = httptest.NewServer(e.hub)
	e.addr = strings.TrimPrefix(e.srv.URL, "http://")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.hub.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		e.srv.Close()
		if err := st.Log.Close(); err != nil {
			t.Errorf("close log: %v", err)
		}
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ev builds a valid event: kind "f" face, "p" plate.
func ev(kind string, src string, ts int64) ingest.Event {
	if kind == "p" {
		return ingest.Event{Type: vocab.PlateRead, TsMs: ts, Source: src,
			Plate: &ingest.Plate{PlateText: "ABC123", Confidence: 0.8, Region: "US-CA", BBox: &ingest.BBox{1, 2, 3, 4}}}
	}
	return ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: src,
		Face: &ingest.Face{PersonName: "Jane", Similarity: 0.9, BBox: ingest.BBox{1, 2, 3, 4}}}
}

// appendN appends n face events from cam in one request; returns the last id.
func (e *testEnv) appendN(n int, src string) uint64 {
	e.t.Helper()
	evs := make([]ingest.Event, n)
	for i := range evs {
		evs[i] = ev("f", src, 0)
	}
	return e.appendEvs(evs)
}

func (e *testEnv) appendEvs(evs []ingest.Event) uint64 {
	e.t.Helper()
	res, err := e.ing.Append(context.Background(), evs)
	if err != nil {
		e.t.Fatalf("append: %v", err)
	}
	return res.LastID
}

// rawClient is a minimal WebSocket client with full control over reading
// (a stalled client simply does not call next).
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to /stream?query; rcvBuf > 0 shrinks SO_RCVBUF first.
// A non-101 answer is returned as resp with a nil client.
func dialRaw(t *testing.T, addr, query string, rcvBuf int) (*rawClient, *http.Response) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if rcvBuf > 0 {
		if err := conn.(*net.TCPConn).SetReadBuffer(rcvBuf); err != nil {
			t.Fatal(err)
		}
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/stream?"+query, nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key[:]))
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, resp
	}
	c := &rawClient{conn: conn, br: br}
	t.Cleanup(func() { c.conn.Close() })
	return c, resp
}

type frame struct {
	op      byte
	payload []byte
}

func (f frame) closeCode() (uint16, string) {
	if f.op != opClose || len(f.payload) < 2 {
		return 0, ""
	}
	return binary.BigEndian.Uint16(f.payload), string(f.payload[2:])
}

// next reads one frame (server frames are unmasked and unfragmented).
func (c *rawClient) next(timeout time.Duration) (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return frame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return frame{}, err
	}
	return frame{op: h[0] & 0x0f, payload: p}, nil
}

// send writes one masked client frame.
func (c *rawClient) send(op byte, p []byte) error {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i%4])
	}
	_, err := c.conn.Write(b)
	return err
}

// msg is the part of a stream message the tests look at.
type msg struct {
	ID               uint64 `json:"id"`
	Type             string `json:"type"`
	Source           string `json:"frame_source_id"`
	FirstAvailableID uint64 `json:"first_available_id"`
	Detail           string `json:"detail"`
	Data             string `json:"data"`
}

func parseMsg(t testing.TB, p []byte) msg {
	t.Helper()
	var m msg
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("bad message %q: %v", p, err)
	}
	return m
}

// readEvents reads event messages until one with id >= until arrives; it
// returns every message read (gap notices included) and the close frame if
// the stream ended first.
func (c *rawClient) readEvents(t *testing.T, until uint64, timeout time.Duration) ([]msg, *frame, error) {
	t.Helper()
	var out []msg
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.next(time.Until(deadline))
		if err != nil {
			return out, nil, err
		}
		switch f.op {
		case opText:
			m := parseMsg(t, f.payload)
			out = append(out, m)
			if m.ID >= until && m.ID != 0 {
				return out, nil, nil
			}
		case opClose:
			return out, &f, nil
		}
	}
}

// checkSeq fails unless ms are exactly the events want, in order.
func checkSeq(t *testing.T, name string, ms []msg, want []uint64) {
	t.Helper()
	if len(ms) != len(want) {
		t.Fatalf("%s: got %d messages, want %d (first %v last %v)", name, len(ms), len(want), head(ms), tail(ms))
	}
	for i := range ms {
		if ms[i].ID != want[i] {
			t.Fatalf("%s: message %d has id %d, want %d", name, i, ms[i].ID, want[i])
		}
	}
}

func span(a, b uint64) []uint64 {
	var s []uint64
	for i := a; i <= b; i++ {
		s = append(s, i)
	}
	return s
}

func head(ms []msg) any {
	if len(ms) == 0 {
		return nil
	}
	return ms[0]
}

func tail(ms []msg) any {
	if len(ms) == 0 {
		return nil
	}
	return ms[len(ms)-1]
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fmtID(id uint64) string { return fmt.Sprint(id) }

var _ = sync.Mutex{}

type ingest_Event = ingest.Event

func errorsAs(err error, target any) bool { return errors.As(err, target) }
