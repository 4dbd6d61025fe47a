package wsfanout

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/wstest"
)

// TestStoredBytes: each event message is exactly the stored JSON.
func TestStoredBytes(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	last := e.appendN(5, "cam1")
	c, _ := dialRaw(t, e.addr, "after=0", 0)
	for id := uint64(1); id <= last; id++ {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.log.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, js, _ := eventlog.SplitValue(v)
		if f.Op != opText || !bytes.Equal(f.Payload, js) {
			t.Fatalf("message for id %d:\n got %q\nwant %q", id, f.Payload, js)
		}
	}
	// Live, too.
	last = e.appendN(1, "cam1")
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := e.log.Get(last)
	_, _, _, js, _ := eventlog.SplitValue(v)
	if !bytes.Equal(f.Payload, js) {
		t.Fatalf("live message:\n got %q\nwant %q", f.Payload, js)
	}
	if !strings.Contains(string(js), `"created_at":"`) {
		t.Fatalf("stored JSON lacks created_at: %s", js)
	}
}

// TestHandover: clients subscribing with after=K (and live) while appends
// race receive exactly K+1..last, in order. A tiny queue forces overflows
// and catch-up from the log during the race.
func TestHandover(t *testing.T) {
	for _, qlen := range []int{4, DefaultQueueLen} {
		t.Run("queue="+fmtID(uint64(qlen)), func(t *testing.T) {
			e := newTestEnv(t, Options{Enabled: true, QueueLen: qlen})
			pre := e.appendN(300, "cam1")
			const total = 3000
			done := make(chan uint64)
			go func() {
				var last uint64
				n := 0
				for n < total-int(pre) {
					k := 1 + rand.IntN(40)
					if n+k > total-int(pre) {
						k = total - int(pre) - n
					}
					last = e.appendN(k, "cam1")
					n += k
				}
				done <- last
			}()
			type result struct {
				name string
				ms   []msg
				err  error
				from uint64
			}
			var wg sync.WaitGroup
			results := make(chan result, 16)
			for _, after := range []int64{0, 1, 150, 299, 300, 1000, -1} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
					q, name := "after="+fmtID(uint64(after)), "after="+fmtID(uint64(after))
					if after < 0 {
						q, name = "", "live"
					}
					c, resp := dialRaw(t, e.addr, q, 0)
					if c == nil {
						results <- result{name: name, err: io.ErrUnexpectedEOF}
						_ = resp
						return
					}
					ms, cl, err := readEvents(t, c, total, 30*time.Second)
					if cl != nil {
						err = io.EOF
					}
					results <- result{name: name, ms: ms, err: err, from: uint64(after)}
				}()
			}
			last := <-done
			if last != total {
				t.Fatalf("last id %d, want %d", last, total)
			}
			wg.Wait()
			close(results)
			for r := range results {
				if r.err != nil {
					t.Fatalf("%s: %v after %d messages", r.name, r.err, len(r.ms))
				}
				if r.name == "live" {
					if len(r.ms) == 0 {
						t.Fatalf("live: nothing received")
					}
					checkSeq(t, r.name, r.ms, span(r.ms[0].ID, total))
					continue
				}
				checkSeq(t, r.name, r.ms, span(r.from+1, total))
			}
		})
	}
}

// TestLiveNoGap: a client without after receives every event appended
// after it connected, while connects race appends.
func TestLiveNoGap(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true, QueueLen: 8})
	e.appendN(10, "cam1")
	stop := make(chan struct{})
	appended := make(chan uint64, 1)
	go func() {
		var last uint64
		for {
			select {
			case <-stop:
				appended <- last
				return
			default:
				last = e.appendN(1+rand.IntN(5), "cam1")
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	c, _ := dialRaw(t, e.addr, "", 0)
	// The first live event: everything from it on must arrive.
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first := parseMsg(t, f.Payload).ID
	time.Sleep(100 * time.Millisecond)
	close(stop)
	last := <-appended
	ms, _, err := readEvents(t, c, last, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "live", ms, span(first+1, last))
}

// TestFilters: type and source filters on replay and live; the cursor
// advances over filtered-out ids.
func TestFilters(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	var want = map[string][]uint64{}
	add := func(kind, src string) {
		id := e.appendEvs([]ingest_Event{ev(kind, src, 0)})
		typ := map[string]string{"f": "face_match", "p": "plate_read"}[kind]
		want["type="+typ] = append(want["type="+typ], id)
		want["source="+src] = append(want["source="+src], id)
		want["type="+typ+"&source="+src] = append(want["type="+typ+"&source="+src], id)
	}
	kinds := []string{"f", "p"}
	srcs := []string{"cam_a", "cam_b", "cam_c"}
	for i := 0; i < 60; i++ {
		add(kinds[i%2], srcs[(i/2)%3])
	}
	queries := []string{"type=face_match", "type=plate_read", "source=cam_b", "type=plate_read&source=cam_c"}
	clients := map[string]*wstest.Conn{}
	for _, q := range queries {
		clients[q], _ = dialRaw(t, e.addr, "after=0&"+q, 0)
	}
	// Live part: the same filters apply to live batches (mixed batches too).
	var mixed []ingest_Event
	for i := 0; i < 30; i++ {
		mixed = append(mixed, ev(kinds[i%3%2], srcs[i%3], 0))
	}
	last := e.appendEvs(mixed)
	for i := range mixed {
		id := last - uint64(len(mixed)-1-i)
		typ := map[string]string{"face_match": "face_match", "plate_read": "plate_read"}[mixed[i].Type]
		src := mixed[i].Source
		want["type="+typ] = append(want["type="+typ], id)
		want["source="+src] = append(want["source="+src], id)
		want["type="+typ+"&source="+src] = append(want["type="+typ+"&source="+src], id)
	}
	// Single-type batches after the clients are live: batches a filter
	// rejects entirely take the skipped-range path (no wake-up).
	for i := 0; i < 24; i++ {
		add(kinds[i/6%2], srcs[i%3])
	}
	// Read up to each filter's own last id.
	for _, q := range queries {
		w := want[q]
		ms, _, err := readEvents(t, clients[q], w[len(w)-1], 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		checkSeq(t, q, ms, w)
		for _, m := range ms {
			if strings.Contains(q, "type=") && !strings.Contains(q, "type="+m.Type) {
				t.Fatalf("%s: got type %s", q, m.Type)
			}
			if strings.Contains(q, "source=") && !strings.Contains(q, "source="+m.Source) {
				t.Fatalf("%s: got source %s", q, m.Source)
			}
		}
	}
}

// TestGapAfterRetention: after retention trimmed the prefix, a cursor below
// it gets {"type":"gap","first_available_id":N} first, then N...; a hole
// left by a late expired event is skipped silently.
func TestGapAfterRetention(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	now := time.Now().UnixMilli()
	old := now - 10*24*3600*1000
	var evs []ingest_Event
	for i := 0; i < 100; i++ {
		evs = append(evs, ev("f", "cam1", old+int64(i)))
	}
	e.appendEvs(evs) // 1..100 expired
	evs = evs[:0]
	for i := 0; i < 50; i++ {
		ts := now
		if i == 29 {
			ts = old // id 130: a late, expired event beyond the prefix
		}
		evs = append(evs, ev("p", "cam2", ts))
	}
	last := e.appendEvs(evs) // 101..150
	n, err := e.view.Cleanup(context.Background(), now-24*3600*1000)
	if err != nil {
		t.Fatal(err)
	}
	if n != 101 {
		t.Fatalf("cleanup deleted %d, want 101", n)
	}
	want := append(span(101, 129), span(131, last)...)

	c, _ := dialRaw(t, e.addr, "after=10", 0)
	ms, _, err := readEvents(t, c, last, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Type != "gap" || ms[0].FirstAvailableID != 101 {
		t.Fatalf("first message %+v, want gap with first_available_id 101", head(ms))
	}
	checkSeq(t, "after=10", ms[1:], want)

	// A cursor inside the retained range: no notice, hole skipped.
	c2, _ := dialRaw(t, e.addr, "after=120", 0)
	ms, _, err = readEvents(t, c2, last, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "after=120", ms, append(span(121, 129), span(131, last)...))

	// Everything trimmed: the notice names the next id to come.
	if _, err := e.view.Cleanup(context.Background(), now+24*3600*1000); err != nil {
		t.Fatal(err)
	}
	c3, _ := dialRaw(t, e.addr, "after=5", 0)
	f, err := c3.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m := parseMsg(t, f.Payload); m.Type != "gap" || m.FirstAvailableID != last+1 {
		t.Fatalf("got %s, want gap with first_available_id %d", f.Payload, last+1)
	}
	id := e.appendN(1, "cam1")
	ms, _, err = readEvents(t, c3, id, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "after trim", ms, []uint64{id})
}

// TestStalledClient: a client that reads nothing while 20,000 events flow
// does not slow the others, does not grow server memory, is disconnected
// as too slow and resumes gaplessly with after.
func TestStalledClient(t *testing.T) {
	e := newTestEnv(t, Options{
		Enabled: true, QueueLen: 64,
		// Long enough that the stalled client is still connected (and
		// blocked in a write) when the heap is measured.
		WriteTimeout: 12 * time.Second, StallTimeout: 12 * time.Second,
		// Small kernel buffers so that the stall shows after a few KiB
		// instead of the MBs loopback autotuning would absorb.
		SendBuffer: 8 << 10,
	})
	const total = 20000
	stalled, _ := dialRaw(t, e.addr, "", 4<<10)

	// Three healthy clients, read as fast as the data comes.
	var healthy []*collector
	for i := 0; i < 3; i++ {
		healthy = append(healthy, dialCollector(t, e.addr, ""))
	}
	waitFor(t, 5*time.Second, "4 clients", func() bool { return e.hub.Clients() == 4 })

	// Exact heap accounting for what the hub could retain: the entries
	// the log's commit path allocates (Publish shares them) and the hub's
	// own allocations. HeapInuse alone is logged only: under -race Pebble
	// allocates its memtables on the Go heap and they grow during the run.
	oldRate := runtime.MemProfileRate
	defer func() { runtime.MemProfileRate = oldRate }()
	// 1 KiB sampling: exact enough against the 1 MiB bound below, cheap
	// enough not to slow the run much.
	runtime.MemProfileRate = 1024
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r0 := retainedBy()

	start := time.Now()
	for i := 0; i < total/100; i++ {
		e.appendN(100, "cam1")
	}
	appendDur := time.Since(start)
	for i, h := range healthy {
		if err := h.waitID(total, 10*time.Second); err != nil {
			t.Fatalf("healthy client %d: %v", i, err)
		}
		h.check(t, span(1, total))
	}
	t.Logf("appended %d events in %s; healthy clients had all of them %s after the last append returned",
		total, appendDur.Round(time.Millisecond), (time.Since(start) - appendDur).Round(time.Millisecond))

	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	r1 := retainedBy()
	if got := e.hub.Clients(); got != 4 {
		t.Fatalf("the stalled client was cut before the heap was measured (%d clients)", got)
	}
	growth := int64(m1.HeapInuse) - int64(m0.HeapInuse)
	t.Logf("heap in use: %d KiB before, %d KiB after (growth %d KiB, Pebble memtables included); retained by the log's batches and the hub: %d KiB before, %d KiB after",
		m0.HeapInuse>>10, m1.HeapInuse>>10, growth>>10, r0>>10, r1>>10)
	// Retaining the stream for the stalled client would hold 20,000
	// entries (~250 B JSON + 88 B Entry each): >= 6.5 MB. The hub holds at
	// most 2*QueueLen events per client plus one pooled chunk per busy
	// writer (doc.go): here 128 * ~350 B + 4 * 128 KiB < 1 MiB.
	if r1-r0 > 1<<20 {
		t.Errorf("hub and published batches retain %d KiB more while a client is stalled", (r1-r0)>>10)
	}
	if value(e.hub.m.overflows) == 0 {
		t.Errorf("the stalled client's queue never overflowed")
	}

	// The stalled client is cut as too slow within WriteTimeout (+ grace).
	waitFor(t, 40*time.Second, "too_slow disconnect", func() bool {
		return value(e.hub.m.disconnects.WithLabelValues(reasonTooSlow)) == 1
	})
	if got := e.hub.Clients(); got != 3 {
		t.Fatalf("clients = %d after the stalled one was cut, want 3", got)
	}
	if got := value(e.hub.m.clients); got != 3 {
		t.Fatalf("securevision_wsfanout_clients = %v after the stalled one was cut, want 3", got)
	}

	// It wakes up: reads what was buffered, then resumes with after. (The
	// rest of the cut socket's data and its FIN may take a while: the
	// kernel's zero-window probes backed off during the stall; a client
	// resumes from the last complete event it has either way.)
	ms, cl, err := readEvents(t, stalled, total, 3*time.Second)
	t.Logf("stalled client read %d events before the stream ended (close frame: %v, err: %v)", len(ms), cl != nil, err)
	if cl != nil {
		code, reason := cl.CloseCode()
		t.Logf("close %d %q", code, reason)
		if code != CloseTooSlow || !strings.HasPrefix(reason, "too slow: resume with after=") {
			t.Fatalf("close %d %q", code, reason)
		}
	}
	var lastID uint64
	if len(ms) > 0 {
		checkSeq(t, "stalled prefix", ms, span(1, ms[len(ms)-1].ID))
		lastID = ms[len(ms)-1].ID
	}
	if lastID >= total {
		t.Fatalf("stalled client got everything; the stall was not exercised")
	}
	resumed, _ := dialRaw(t, e.addr, "after="+fmtID(lastID), 0)
	rest, _, err := readEvents(t, resumed, total, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "resumed", rest, span(lastID+1, total))
}

// TestTooSlowCloseFrame: a stalled client that resumes reading within the
// grace period after its write timed out gets the rest of the chunk and
// close 4000 naming the cursor to resume from.
func TestTooSlowCloseFrame(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true, QueueLen: 16, WriteTimeout: 300 * time.Millisecond, SendBuffer: 8 << 10})
	c, _ := dialRaw(t, e.addr, "", 4<<10)
	waitFor(t, 5*time.Second, "client", func() bool { return e.hub.Clients() == 1 })
	start := time.Now()
	var last uint64
	for i := 0; i < 20; i++ {
		last = e.appendN(100, "cam1")
	}
	// Wait until the write timed out: the writer is then in its grace
	// write (closeGrace), waiting for us to read.
	waitFor(t, 20*time.Second, "too slow", func() bool { return e.onlyClient().reason() == reasonTooSlow })
	t.Logf("write timed out %s after the first append", time.Since(start).Round(time.Millisecond))
	ms, cl, err := readEvents(t, c, last, 10*time.Second)
	if err != nil || cl == nil {
		t.Fatalf("want a close frame; got %d events, err %v", len(ms), err)
	}
	code, reason := cl.CloseCode()
	checkSeq(t, "before close", ms, span(1, ms[len(ms)-1].ID))
	want := "too slow: resume with after=" + fmtID(ms[len(ms)-1].ID)
	if code != CloseTooSlow || reason != want {
		t.Fatalf("close %d %q, want %d %q", code, reason, CloseTooSlow, want)
	}
	t.Logf("read %d events, then close %d %q", len(ms), code, reason)
	r, _ := dialRaw(t, e.addr, "after="+fmtID(ms[len(ms)-1].ID), 0)
	rest, _, err := readEvents(t, r, last, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, "resumed", rest, span(ms[len(ms)-1].ID+1, last))
}

// TestDisabled: the upgrade is accepted, then closed with 1008.
func TestDisabled(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: false})
	c, _ := dialRaw(t, e.addr, "", 0)
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	code, reason := f.CloseCode()
	if f.Op != opClose || code != ClosePolicyViolation {
		t.Fatalf("got op %d code %d %q, want close 1008", f.Op, code, reason)
	}
	t.Logf("close %d %q", code, reason)
	// With a gws client too.
	g := dialGws(t, e.addr, "")
	select {
	case err := <-g.closed:
		var ce *gws.CloseError
		if !errorsAs(err, &ce) || ce.Code != ClosePolicyViolation {
			t.Fatalf("gws client closed with %v, want 1008", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no close")
	}
	// A refused stream holds its slot only until its close completes.
	waitFor(t, 5*time.Second, "disabled streams released", func() bool { return e.hub.Clients() == 0 })
}

// TestManyClients: 1,000 concurrent clients receive the same stream.
func TestManyClients(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	const n, events = 1000, 50
	cs := make([]*collector, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cs[i] = dialCollector(t, e.addr, "")
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "1000 clients", func() bool { return e.hub.Clients() == n })
	for i := 0; i < events/5; i++ {
		e.appendN(5, "cam1")
	}
	for i, c := range cs {
		if err := c.waitID(events, 30*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		c.check(t, span(1, events))
	}
	// The counter is added to after a write returns, which may be after
	// the client has read it.
	waitFor(t, 10*time.Second, "sent counter", func() bool { return value(e.hub.m.sent) == n*events })
	if got := value(e.hub.m.sent); got != n*events {
		t.Fatalf("messages sent %v, want %d", got, n*events)
	}
}

// TestClientMessages: "ping", protocol ping, other input, oversize input.
func TestClientMessages(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true, MaxMessageBytes: 1024})
	c, _ := dialRaw(t, e.addr, "", 0)
	expect := func(op byte, want string) {
		t.Helper()
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f.Op != op || string(f.Payload) != want {
			t.Fatalf("got op %d %q, want op %d %q", f.Op, f.Payload, op, want)
		}
	}
	if err := c.Send(opText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	expect(opText, `{"type":"pong","data":"ping"}`)
	if err := c.Send(0x9, []byte("hb-1")); err != nil { // protocol ping
		t.Fatal(err)
	}
	expect(opPong, "hb-1")
	if err := c.Send(opText, []byte(`{"subscribe":"x"}`)); err != nil {
		t.Fatal(err)
	}
	expect(opText, `{"type":"error","detail":"unsupported message; send \"ping\""}`)
	// Still up: events and pings keep flowing.
	id := e.appendN(1, "cam1")
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil || parseMsg(t, f.Payload).ID != id {
		t.Fatalf("event after error reply: %v %q", err, f.Payload)
	}
	if err := c.Send(opText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	expect(opText, `{"type":"pong","data":"ping"}`)
	// Oversize: gws refuses with 1009.
	if err := c.Send(opText, bytes.Repeat([]byte("x"), 2000)); err != nil {
		t.Fatal(err)
	}
	f, err = c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	code, reason := f.CloseCode()
	if code != 1009 {
		t.Fatalf("oversize message: op %d code %d %q, want close 1009", f.Op, code, reason)
	}
	waitFor(t, 5*time.Second, "message_too_large disconnect", func() bool {
		return value(e.hub.m.disconnects.WithLabelValues(reasonTooLarge)) == 1
	})
}

// TestGwsPing: gws's client protocol ping gets a pong.
func TestGwsPing(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	g := dialGws(t, e.addr, "")
	if err := g.conn.WritePing([]byte("p1")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-g.pongs:
		if string(p) != "p1" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

// TestMaxClients: the cap answers 503 before the upgrade and counts it.
func TestMaxClients(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true, MaxClients: 2})
	a, _ := dialRaw(t, e.addr, "", 0)
	dialRaw(t, e.addr, "", 0)
	c, resp := dialRaw(t, e.addr, "", 0)
	if c != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v, want 503", resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Logf("503 body: %s", body)
	if got := value(e.hub.m.refused.WithLabelValues(refusedMaxClients)); got != 1 {
		t.Fatalf("refused = %v", got)
	}
	// A slot frees when a client leaves.
	_ = a.Send(opClose, []byte{0x03, 0xe8})
	waitFor(t, 5*time.Second, "slot freed", func() bool { return e.hub.Clients() == 1 })
	if c, resp := dialRaw(t, e.addr, "", 0); c == nil {
		t.Fatalf("after a client left: %s", resp.Status)
	}
}

// TestBadParams: invalid query parameters answer 422 before the upgrade.
func TestBadParams(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	for _, tc := range []struct{ q, field, typ string }{
		{"after=abc", "after", "int_parsing"},
		{"after=-1", "after", "greater_than_equal"},
		{"type=car", "type", "enum"},
		{"source=", "source", "string_too_long"},
	} {
		c, resp := dialRaw(t, e.addr, tc.q, 0)
		if c != nil || resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%s: status %s, want 422", tc.q, resp.Status)
		}
		var body struct {
			Detail []struct {
				Loc  []any  `json:"loc"`
				Msg  string `json:"msg"`
				Type string `json:"type"`
			} `json:"detail"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if len(body.Detail) != 1 || body.Detail[0].Loc[0] != "query" || body.Detail[0].Loc[1] != tc.field || body.Detail[0].Type != tc.typ {
			t.Fatalf("%s: body %+v", tc.q, body)
		}
	}
}

// TestShutdown: every client gets 1001 "server shutting down"; new
// connections are refused.
func TestShutdown(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	var cs []*wstest.Conn
	for i := 0; i < 3; i++ {
		c, _ := dialRaw(t, e.addr, "", 0)
		cs = append(cs, c)
	}
	waitFor(t, 5*time.Second, "3 clients", func() bool { return e.hub.Clients() == 3 })
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc <- e.hub.Shutdown(ctx)
	}()
	for i, c := range cs {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		code, reason := f.CloseCode()
		if code != CloseGoingAway || reason != "server shutting down" {
			t.Fatalf("client %d: close %d %q", i, code, reason)
		}
		_ = c.Send(opClose, f.Payload[:2]) // echo, as a client does
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if e.hub.Clients() != 0 {
		t.Fatalf("clients = %d after shutdown", e.hub.Clients())
	}
	if c, resp := dialRaw(t, e.addr, "", 0); c != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection during shutdown: %v", resp.Status)
	}
}

// collector is a client (internal/wstest) whose read loop records the ids
// it receives.
type collector struct {
	conn   *wstest.Conn
	mu     sync.Mutex
	ids    []uint64
	last   uint64
	notify chan struct{}
	closed chan error
}

func (c *collector) onMessage(b []byte) {
	// Cheap id scan: the stored JSON starts with {"id":N,
	var id uint64
	if bytes.HasPrefix(b, []byte(`{"id":`)) {
		for _, ch := range b[6:] {
			if ch < '0' || ch > '9' {
				break
			}
			id = id*10 + uint64(ch-'0')
		}
	}
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.last = id
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// dialCollector connects a collector to /stream?query; its read loop runs
// until the stream ends.
func dialCollector(t *testing.T, addr, query string) *collector {
	t.Helper()
	conn, _, err := wstest.Dial("ws://"+addr+"/stream?"+query, wstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{conn: conn, notify: make(chan struct{}, 1), closed: make(chan error, 1)}
	go func() { c.closed <- conn.ReadLoop(c.onMessage) }()
	t.Cleanup(func() {
		_ = conn.SendClose(1000, "")
		conn.Close()
	})
	return c
}

// gwsClient is a client of the gws library, the one the hub is built on:
// the interoperability checks (TestDisabled, TestGwsPing) use it; every
// other test uses internal/wstest.
type gwsClient struct {
	gws.BuiltinEventHandler // answers pings
	conn                    *gws.Conn
	pongs                   chan []byte
	closed                  chan error
}

func (c *gwsClient) OnClose(_ *gws.Conn, err error) { c.closed <- err }
func (c *gwsClient) OnPong(_ *gws.Conn, p []byte) {
	select {
	case c.pongs <- append([]byte(nil), p...):
	default:
	}
}

func dialGws(t *testing.T, addr, query string) *gwsClient {
	t.Helper()
	c := &gwsClient{pongs: make(chan []byte, 4), closed: make(chan error, 1)}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws://" + addr + "/stream?" + query})
	if err != nil {
		t.Fatal(err)
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { _ = conn.WriteClose(1000, nil) })
	return c
}

func (c *collector) waitID(id uint64, d time.Duration) error {
	end := time.After(d)
	for {
		c.mu.Lock()
		last := c.last
		c.mu.Unlock()
		if last >= id {
			return nil
		}
		select {
		case <-c.notify:
		case err := <-c.closed:
			return err
		case <-end:
			return errTimeout(last)
		}
	}
}

type errTimeout uint64

func (e errTimeout) Error() string { return "timed out; last id " + fmtID(uint64(e)) }

func (c *collector) check(t *testing.T, want []uint64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) != len(want) {
		t.Fatalf("got %d messages, want %d", len(c.ids), len(want))
	}
	for i := range want {
		if c.ids[i] != want[i] {
			t.Fatalf("message %d: id %d, want %d", i, c.ids[i], want[i])
		}
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	return 0
}

// retainedBy returns the heap bytes in use that were allocated by the
// log's commit path (the entries Publish hands out) or by the hub itself.
// Exact with runtime.MemProfileRate = 1, an estimate otherwise.
func retainedBy() int64 {
	// The profile reflects the heap as of the last completed GC cycle.
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+256)
	n, _ = runtime.MemProfile(recs, true)
	var total int64
	for _, r := range recs[:n] {
		fr := runtime.CallersFrames(r.Stack())
		for {
			// The allocating function is the first frame outside the
			// runtime (and slices/append helpers).
			f, more := fr.Next()
			if strings.HasPrefix(f.Function, "runtime.") || strings.HasPrefix(f.Function, "slices.") {
				if !more {
					break
				}
				continue
			}
			if strings.HasPrefix(f.Function, "github.com/securevision/events/eventlog.(*Log).commit") ||
				strings.HasPrefix(f.Function, "github.com/securevision/events/wsfanout.") &&
					!strings.Contains(f.Function, "collector") && !strings.Contains(f.Function, ".Test") {
				total += r.InUseBytes()
			}
			break
		}
	}
	return total
}

// TestShutdownDuringReplay: a close requested in the middle of a replay
// ends the stream after a gapless prefix.
func TestShutdownDuringReplay(t *testing.T) {
	e := newTestEnv(t, Options{Enabled: true})
	for i := 0; i < 20; i++ {
		e.appendN(1000, "cam1")
	}
	c, _ := dialRaw(t, e.addr, "after=0", 16<<10)
	if _, err := c.ReadFrame(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc <- e.hub.Shutdown(ctx)
	}()
	ms, cl, err := readEvents(t, c, 1<<62, 10*time.Second)
	if err != nil || cl == nil {
		t.Fatalf("want close; err %v after %d events", err, len(ms))
	}
	if code, _ := cl.CloseCode(); code != CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	_ = c.Send(opClose, cl.Payload[:2])
	if len(ms) > 0 {
		checkSeq(t, "prefix", ms, span(2, ms[len(ms)-1].ID))
	}
	t.Logf("replay cut after %d of 20000 events", len(ms)+1)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// onlyClient returns the hub's first registered client.
func (e *testEnv) onlyClient() *client {
	e.hub.mu.Lock()
	defer e.hub.mu.Unlock()
	for c := range e.hub.mu.conns {
		return c
	}
	return nil
}
