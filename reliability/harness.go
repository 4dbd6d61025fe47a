// Package reliability holds the system-level checks that run the real
// securevision binary: the kill -9 crash harness, the soak driver, abuse
// limits, backups and export/import under load, the real-Prometheus
// scrape test and the security checks. It builds the binary with the go
// tool and talks to it as clients do (HTTP, and WebSocket through gws);
// only a backup test also opens a backup read-only with eventlog.
//
// The heavy checks are opt-in so that `go test ./...` stays fast:
//
//	make crash-test   SV_CRASH=1   go test ./reliability -run TestCrash
//	make soak         go run ./reliability/cmd/soak -duration 10m
//	make mini-soak    go run ./reliability/cmd/soak -duration 60s
//
// This file is the harness they share: build the binary once, start it on a
// directory and a free port, post events, read the store back (offline
// with `securevision export`, online with WebSocket replay).
package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/testbin"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/internal/wstest"
)

// BuildBinary builds cmd/securevision into dir and returns its path. The
// SV_BINARY environment variable, when set, names a prebuilt binary instead.
func BuildBinary(dir string) (string, error) {
	if p := os.Getenv("SV_BINARY"); p != "" {
		return p, nil
	}
	bin := filepath.Join(dir, "securevision")
	if _, err := testbin.Build(context.Background(), "", bin); err != nil {
		return "", err
	}
	return bin, nil
}

// StartServer starts bin serving the store dir on a free port with the
// extra settings env (KEY=VALUE) and waits until /health answers (see
// testbin.Start: retention is off unless env sets it; no SECUREVISION__
// setting of this process reaches the server).
func StartServer(bin, dir string, env ...string) (*testbin.Server, error) {
	return testbin.Start(context.Background(), testbin.Options{Binary: bin, StoreDir: dir, Env: env})
}

// Tool runs `securevision <args>` and returns stdout, stderr and the error.
func Tool(bin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// Verify runs `securevision verify --store dir`.
func Verify(bin, dir string) error {
	out, errb, err := Tool(bin, "verify", "--store", "pebble://"+dir)
	if err != nil {
		return fmt.Errorf("verify: %v: %s%s", err, out, errb)
	}
	return nil
}

// Export reads every stored event offline (`securevision export --store`),
// one raw JSON line each, in id order.
func Export(bin, dir string) ([][]byte, error) {
	out, errb, err := Tool(bin, "export", "--store", "pebble://"+dir)
	if err != nil {
		return nil, fmt.Errorf("export: %v: %s", err, errb)
	}
	return splitLines([]byte(out)), nil
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			lines = append(lines, append([]byte(nil), l...))
		}
	}
	return lines
}

// Stored is the part of a stored event the checks compare.
type Stored struct {
	ID            uint64          `json:"id"`
	Type          string          `json:"type"`
	TsMs          int64           `json:"ts_ms"`
	FrameSourceID string          `json:"frame_source_id"`
	CreatedAt     string          `json:"created_at"`
	Payload       json.RawMessage `json:"payload"`
}

// Ingest posts body to /ingest and returns the status and the decoded
// {"count","first_id","last_id"} on 200.
func Ingest(ctx context.Context, c *http.Client, base, token string, body []byte, ndjson bool) (int, IngestResult, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, IngestResult{}, nil, err
	}
	if ndjson {
		req.Header.Set("Content-Type", "application/x-ndjson")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, IngestResult{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, IngestResult{}, b, err
	}
	var res IngestResult
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &res); err != nil {
			return resp.StatusCode, res, b, fmt.Errorf("decode ingest answer %q: %w", b, err)
		}
	}
	return resp.StatusCode, res, b, nil
}

// IngestResult is POST /ingest's 200 body.
type IngestResult struct {
	Count   int    `json:"count"`
	FirstID uint64 `json:"first_id"`
	LastID  uint64 `json:"last_id"`
}

// EventJSON is a valid event whose content identifies it: the plate text
// or person name is tag; seq (i) is an extra payload field.
func EventJSON(i int, src, tag string, tsMs int64) []byte {
	ev := ingest.Event{TsMs: tsMs, Source: src, Extra: map[string]json.RawMessage{"seq": fmt.Append(nil, i)}}
	if i%2 == 0 {
		ev.Type = vocab.PlateRead
		ev.Plate = &ingest.Plate{PlateText: tag, Confidence: 0.5, Region: "US-CA", ListMatchSet: true}
	} else {
		ev.Type = vocab.FaceMatch
		ev.Face = &ingest.Face{PersonName: tag, Similarity: 0.75, BBox: ingest.BBox{1, 2, 3, 4}}
	}
	return ingestbody.Append(nil, &ev)
}

// SameContent reports whether a stored event carries what was sent
// (everything but id and created_at, compared as decoded JSON).
func SameContent(sent, stored []byte) (bool, error) {
	var a, b map[string]any
	if err := json.Unmarshal(sent, &a); err != nil {
		return false, err
	}
	if err := json.Unmarshal(stored, &b); err != nil {
		return false, err
	}
	for _, m := range []map[string]any{a, b} {
		delete(m, "id")
		delete(m, "created_at")
	}
	// The log fills list_match for plates; the sent event may omit it.
	if p, ok := a["payload"].(map[string]any); ok && a["type"] == "plate_read" {
		if _, ok := p["list_match"]; !ok {
			p["list_match"] = nil
		}
	}
	return jsonEqual(a, b), nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// WSReplay connects to /stream?query and collects text messages until
// it has received an event with id >= until (or, with until 0, until the
// stream is quiet for quiet). It returns the raw messages (event JSON and
// control messages) in arrival order. found is false when /stream answers
// 404 (not mounted).
func WSReplay(base, query string, until uint64, quiet, timeout time.Duration, header http.Header) (msgs [][]byte, found bool, err error) {
	addr := base + "/stream?" + query
	c, resp, err := wstest.Dial(addr, wstest.Options{Header: header})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, false, nil
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, true, fmt.Errorf("dial %s: status %d: %w", addr, status, err)
	}
	defer func() {
		_ = c.SendClose(1000, "")
		c.Close()
	}()
	end := time.Now().Add(timeout)
	for {
		m, err := c.ReadMessage(min(quiet, time.Until(end)))
		switch {
		case err == nil:
			msgs = append(msgs, m)
			if until > 0 {
				var s struct {
					ID uint64 `json:"id"`
				}
				if json.Unmarshal(m, &s) == nil && s.ID >= until {
					return msgs, true, nil
				}
			}
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return msgs, true, fmt.Errorf("stream closed after %d messages: %v", len(msgs), err)
		case !time.Now().Before(end):
			return msgs, true, fmt.Errorf("timeout after %d messages waiting for id %d", len(msgs), until)
		case until == 0:
			return msgs, true, nil // quiet
		}
	}
}
