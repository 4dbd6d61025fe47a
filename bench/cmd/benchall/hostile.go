package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/internal/vocab"
)

// targetHostileGrowth bounds the server's peak RSS growth for one of the
// worst request bodies, as a multiple of the body: the server holds the
// body (its read buffer grows by doubling) and one event's tree, never a
// tree of the whole body.
const targetHostileGrowth = 4.0

// hostileBodies are the worst 8 MiB bodies for memory: millions of tiny
// JSON values, which a parser that builds a tree first turns into
// gigabytes.
func hostileBodies() []struct {
	name, contentType string
	body              []byte
	want              int
} {
	n := vocab.MaxBodyBytes / 2
	zeros := append([]byte("["), bytes.Repeat([]byte("0,"), n-1)...)
	zeros[len(zeros)-1] = ']'
	item := []byte(`{"type":"face_match","frame_source_id":"c","payload":{"person_name":"A","similarity":0.5,"bbox":[1,2,3,4],"x":[`)
	item = append(item, bytes.Repeat([]byte("0,"), (vocab.MaxBodyBytes-len(item))/2-4)...)
	item = append(item, `0]}}`...)
	return []struct {
		name, contentType string
		body              []byte
		want              int
	}{
		{"array of 4M zeros", "application/json", zeros, http.StatusRequestEntityTooLarge},
		{"one event with 4M values", "application/json", item, http.StatusUnprocessableEntity},
		{"NDJSON line with 4M values", "application/x-ndjson", item, http.StatusUnprocessableEntity},
	}
}

// runHostile measures the server's peak RSS growth (VmHWM, reset through
// /proc/<pid>/clear_refs before each case) while it answers the worst
// bodies, one request and four at once.
func runHostile(e *env, s *bench.Section) error {
	dir, err := e.freshStore("hostile")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := e.startServer(dir, s)
	if err != nil {
		return err
	}
	defer e.stopServer(srv)
	pid := srv.PID()
	s.Text = append(s.Text, fmt.Sprintf("POST /ingest with each body below, first alone, then from 4 clients at once. "+
		"Peak RSS growth is the server's VmHWM after the requests minus its VmRSS before them, with the high-water mark reset "+
		"first (`echo 5 > /proc/<pid>/clear_refs`). Target: at most %.0f× the body per request. "+
		"The Go runtime keeps freed heap for reuse, so a case can grow less than the one before it.", targetHostileGrowth))
	t := bench.Table{Header: []string{"body", "bytes", "answer", "clients", "peak RSS growth", "growth / body per request"}}
	for _, c := range hostileBodies() {
		for _, clients := range []int{1, 4} {
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
				return fmt.Errorf("reset peak RSS: %w", err)
			}
			before, err := procStatusKB(pid, "VmRSS")
			if err != nil {
				return err
			}
			codes := make([]int, clients)
			errs := make([]error, clients)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Post(srv.URL+"/ingest", c.contentType, bytes.NewReader(c.body))
					if err != nil {
						errs[i] = err
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					codes[i] = resp.StatusCode
				}()
			}
			wg.Wait()
			peak, err := procStatusKB(pid, "VmHWM")
			if err != nil {
				return err
			}
			for i := range clients {
				if errs[i] != nil {
					return fmt.Errorf("%s: %w", c.name, errs[i])
				}
				if codes[i] != c.want {
					return fmt.Errorf("%s: answered %d, want %d", c.name, codes[i], c.want)
				}
			}
			growth := float64(max(0, peak-before)) * 1024
			ratio := growth / float64(len(c.body)*clients)
			t.Rows = append(t.Rows, []string{c.name, strconv.Itoa(len(c.body)), strconv.Itoa(c.want), strconv.Itoa(clients),
				fmt.Sprintf("%.1f MiB", growth/(1<<20)), fmt.Sprintf("%.2f×", ratio)})
			s.Check(fmt.Sprintf("%s, %d client(s): peak RSS growth", c.name, clients), fmt.Sprintf("≤ %.0f× body", targetHostileGrowth),
				fmt.Sprintf("%.2f× (%.1f MiB)", ratio, growth/(1<<20)), ratio <= targetHostileGrowth)
		}
	}
	s.Tables = append(s.Tables, t)
	return nil
}

// procStatusKB reads a "kB" field of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
