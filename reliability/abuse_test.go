package reliability

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/internal/testbin"
	"github.com/securevision/events/internal/wstest"
)

// Abuse limits of the real binary (timeouts as in cmd/securevision/serve.go:
// ReadHeaderTimeout 5s, ReadTimeout 60s, MaxHeaderBytes 64 KiB).

func startAbuseServer(t *testing.T, env ...string) *testbin.Server {
	t.Helper()
	srv, err := StartServer(binary(t), filepath.Join(t.TempDir(), "events"), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// closedWithin reads from c until the server closes it and returns how
// long that took, and what was read.
func closedWithin(c net.Conn, max time.Duration) (time.Duration, string) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(max))
	b, _ := io.ReadAll(c)
	return time.Since(start), string(b)
}

func TestAbuseLimits(t *testing.T) {
	srv := startAbuseServer(t, "SECUREVISION__API__WS_MAX_CLIENTS=4")
	addr := fmt.Sprintf("127.0.0.1:%d", srv.Port)

	t.Run("slowloris-header-timeout", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n")
		// One header byte per second, never finishing the headers.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
					if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
						return
					}
				}
			}
		}()
		closedWithin(c, 30*time.Second)
		d := time.Since(start)
		if d < 4*time.Second || d > 10*time.Second {
			t.Fatalf("slow headers: connection closed after %s, want ~5s (ReadHeaderTimeout)", d)
		}
		t.Logf("slow headers closed after %s", d.Round(time.Millisecond))
	})

	t.Run("slow-body-read-timeout", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprint(c, "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Second):
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		_, got := closedWithin(c, 90*time.Second)
		d := time.Since(start)
		if d < 55*time.Second || d > 70*time.Second {
			t.Fatalf("slow body: closed after %s (%q), want ~60s (ReadTimeout)", d, got)
		}
		t.Logf("slow body closed after %s, answer %q", d.Round(time.Millisecond), firstLine(got))
	})

	t.Run("max-header-bytes-431", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest("GET", srv.URL+"/health", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 80<<10))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("80 KiB header: %d, want 431", r.StatusCode)
		}
	})

	t.Run("ingest-body-cap-413", func(t *testing.T) {
		t.Parallel()
		big := bytes.Repeat([]byte(" "), 8<<20+1)
		big[0] = '['
		// With Content-Length: refused before reading.
		r, err := http.Post(srv.URL+"/ingest", "application/json", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte(`"detail"`)) {
			t.Fatalf("8 MiB+1 body: %d %s", r.StatusCode, b)
		}
		// Chunked (no Content-Length): refused once the cap is passed.
		r, err = http.Post(srv.URL+"/ingest", "application/json", io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked 8 MiB+1 body: %d %s", r.StatusCode, b)
		}
		// NDJSON with one line over the cap.
		req, _ := http.NewRequest("POST", srv.URL+"/ingest", io.MultiReader(bytes.NewReader(big)))
		req.Header.Set("Content-Type", "application/x-ndjson")
		r, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("ndjson 8 MiB+1 body: %d", r.StatusCode)
		}
	})

	t.Run("ws-connection-cap-and-message-cap", func(t *testing.T) {
		t.Parallel()
		wsAddr := srv.URL + "/stream"
		var conns []*wstest.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < 4; i++ {
			c, resp, err := wstest.Dial(wsAddr, wstest.Options{})
			if err != nil {
				if resp != nil && resp.StatusCode == http.StatusNotFound {
					t.Skip("/stream answers 404: not mounted")
				}
				t.Fatalf("stream %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		_, resp, err := wstest.Dial(wsAddr, wstest.Options{})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			st := 0
			if resp != nil {
				st = resp.StatusCode
			}
			t.Fatalf("5th stream with WS_MAX_CLIENTS=4: status %d err %v, want 503", st, err)
		}
		// A closed slot is reusable.
		conns[0].Close()
		conns = conns[1:]
		var c *wstest.Conn
		for i := 0; i < 50; i++ {
			if c, _, err = wstest.Dial(wsAddr, wstest.Options{}); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("slot not released: %v", err)
		}
		c2, _, err := wstest.Dial(wsAddr, wstest.Options{})
		c.Close()
		if err != nil {
			// The cap may still count the stream just closed: retry once.
			time.Sleep(200 * time.Millisecond)
			if c2, _, err = wstest.Dial(wsAddr, wstest.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		defer c2.Close()
		_ = c2.SendText(bytes.Repeat([]byte("x"), 5000))
		// Read (skipping any message) until the stream ends.
		deadline := time.Now().Add(10 * time.Second)
		for err == nil {
			_, err = c2.ReadMessage(time.Until(deadline))
		}
		var ce *wstest.CloseError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatal("5000-byte message: stream not closed")
		case !errors.As(err, &ce) || ce.Code != 1009:
			t.Fatalf("5000-byte message: closed with %v, want 1009", err)
		}
	})

	t.Run("rate-limit-per-ip", func(t *testing.T) {
		t.Parallel()
		rl := startAbuseServer(t, "SECUREVISION__API__RATE_LIMIT_PER_MINUTE=20")
		from := func(ip string) *http.Client {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
			return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
		}
		attacker, other := from("127.0.0.2"), from("127.0.0.3")
		get := func(c *http.Client, spoof bool) (int, string) {
			req, _ := http.NewRequest("GET", rl.URL+"/events?limit=1", nil)
			if spoof {
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.0.%d", time.Now().Nanosecond()%250))
				req.Header.Set("X-Real-IP", "10.9.9.9")
			}
			r, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r.StatusCode, r.Header.Get("Retry-After")
		}
		var mu sync.Mutex
		counts := map[int]int{}
		retryAfter := ""
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					code, ra := get(attacker, i%2 == 0)
					mu.Lock()
					counts[code]++
					if code == 429 {
						retryAfter = ra
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if counts[200] > 20 || counts[429] < 80 || retryAfter == "" {
			t.Fatalf("burst of 100 from 127.0.0.2 at 20/min (half with spoofed X-Forwarded-For): %v, Retry-After %q", counts, retryAfter)
		}
		for i := 0; i < 10; i++ {
			if code, _ := get(other, false); code != 200 {
				t.Fatalf("127.0.0.3 during the burst: %d", code)
			}
		}
		// /health and /metrics are exempt.
		for i := 0; i < 5; i++ {
			r, err := attacker.Get(rl.URL + "/health")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Fatalf("/health from the limited IP: %d", r.StatusCode)
			}
		}
		t.Logf("burst from 127.0.0.2: %v; 127.0.0.3 served normally", counts)
	})
}

func firstLine(s string) string {
	l, _, _ := bufio.NewReader(strings.NewReader(s)).ReadLine()
	return string(l)
}

var _ = context.Background
