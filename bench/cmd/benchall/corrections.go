package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/internal/core"
)

// targetCorrectedRatio: /events?limit=100 with 1% of the events corrected
// keeps at least this share of the uncorrected store's req/s.
const targetCorrectedRatio = 0.90

// runCorrections measures what corrections cost the hot read: a
// checkpoint of the query store gets a correction for 1% of its events
// (through POST /events/{id}/corrections, every 100th id), and the two
// stores are served side by side; rounds alternate between them.
func runCorrections(e *env, s *bench.Section) error {
	info, err := e.queryStore()
	if err != nil {
		return err
	}
	// A checkpoint shares the immutable tables (hard links) and copies
	// the rest: the corrected store cannot change the original.
	dir := filepath.Join(e.cfg.workDir, "store-corrected")
	os.RemoveAll(dir)
	c, err := core.Open(core.Options{URL: info.Dir})
	if err != nil {
		return err
	}
	err = c.Log().Checkpoint(dir)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s.Commands = append(s.Commands, fmt.Sprintf("eventlog.Log.Checkpoint of %s, then POST /events/{id}/corrections {\"false_positive\":true,\"note\":\"bench\"} for every 100th id (32 connections)",
		relPath(e.cfg.moduleDir, info.Dir)))

	base, err := e.startServer(info.Dir, s)
	if err != nil {
		return err
	}
	defer e.stopServer(base)
	corr, err := e.startServer(dir, s)
	if err != nil {
		return err
	}
	defer e.stopServer(corr)

	n, err := postCorrections(e.ctx, corr.URL, info.FirstID, info.LastID, 100, 32)
	if err != nil {
		return err
	}
	// Then the steady state: detections arriving in batches of 100 on
	// both stores, and on the corrected one a correction of one of each
	// batch right after it, so that its newest records hold corrections
	// at the 1% rate (the bulk above sits behind them).
	tail, err := appendSteadyTail(e.ctx, base.URL, corr.URL, 200)
	if err != nil {
		return err
	}
	n += tail
	// Both servers past the compactions their stores owe (the corrected
	// one has just written 1% more records), as a long-running server is.
	for _, srv := range []*bench.Server{base, corr} {
		if _, settled, err := srv.WaitCompactions(e.ctx, 3*time.Second, 5*time.Minute); err != nil {
			return err
		} else if !settled {
			s.Notes = append(s.Notes, "Pebble was still compacting after 5 minutes; the load ran anyway.")
		}
	}
	var page []map[string]any
	if err := corr.GetJSON(e.ctx, "/events?limit=100", &page); err != nil {
		return err
	}
	marked := 0
	for _, ev := range page {
		if ev["correction"] != nil {
			marked++
		}
	}
	s.Text = append(s.Text, fmt.Sprintf("%d corrections appended: one for every 100th of the %d events, then 200 batches of 100 new detections "+
		"on both stores, each followed on the corrected store by a correction of one of its events; the newest page of 100 carries %d corrected events.",
		n, info.Events, marked))

	var runs [2][]bench.LoadResult
	for round := range e.cfg.rounds {
		for i, srv := range []*bench.Server{base, corr} {
			name := []string{"uncorrected", "corrected_1pct"}[i]
			e.logf("corrections %s (round %d of %d)", name, round+1, e.cfg.rounds)
			res, err := e.runner.Run(e.ctx, bench.LoadSpec{Name: name, BaseURL: srv.URL,
				Requests: []bench.Request{{Path: "/events?limit=100"}}, Conns: e.cfg.conns, Duration: e.cfg.duration})
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], res)
			if round == 0 {
				s.Commands = append(s.Commands, res.Command)
			}
		}
	}
	t := bench.Table{Header: append(loadHeader[:len(loadHeader):len(loadHeader)], "req/s of each round")}
	for i, name := range []string{"uncorrected", "corrected_1pct"} {
		var each []string
		for _, r := range runs[i] {
			each = append(each, bench.FormatRate(r.RPS))
		}
		t.Rows = append(t.Rows, append(loadRow(name, "/events?limit=100", medianBy(runs[i], rps)), strings.Join(each, ", ")))
	}
	s.Tables = append(s.Tables, t)
	ratio := medianRatio(runs[1], runs[0], rps)
	s.Text = append(s.Text, fmt.Sprintf("%d connections, %s per run, %d rounds; each round runs the uncorrected store's server, then the corrected one's. "+
		"The ratio is the median of the rounds' ratios.", e.cfg.conns, e.cfg.duration, e.cfg.rounds))
	s.Check("/events?limit=100, 1% of events corrected, vs none", fmt.Sprintf("≥ %.0f%% of the req/s", targetCorrectedRatio*100),
		fmt.Sprintf("%.1f%%", ratio*100), ratio >= targetCorrectedRatio && clean(medianBy(runs[1], rps)))
	return nil
}

// postCorrections corrects every step-th id in [first, last] as a false
// positive, with conns concurrent clients, and returns how many it
// corrected (ids retention removed answer 404 and are skipped).
func postCorrections(ctx context.Context, baseURL string, first, last, step uint64, conns int) (int, error) {
	ids := make(chan uint64)
	var done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	body := []byte(`{"false_positive":true,"note":"bench"}`)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/events/%d/corrections", baseURL, id), bytes.NewReader(body))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
					var resp *http.Response
					if resp, err = http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
						switch resp.StatusCode {
						case http.StatusCreated:
							done.Add(1)
						case http.StatusNotFound:
						default:
							err = fmt.Errorf("POST /events/%d/corrections: %s", id, resp.Status)
						}
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for id := first - first%step + step; id <= last; id += step {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		ids <- id
	}
	close(ids)
	wg.Wait()
	return int(done.Load()), firstErr
}

// appendSteadyTail posts rounds batches of 100 generated detections to
// both servers and, after each, a correction of one of the batch's events
// to corrURL. It returns the corrections made.
func appendSteadyTail(ctx context.Context, baseURL, corrURL string, rounds int) (int, error) {
	g := bench.NewGenerator(11, bench.Sources(16))
	post := func(url string, body []byte) (uint64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var res struct {
			FirstID uint64 `json:"first_id"`
		}
		if resp.StatusCode/100 != 2 {
			return 0, fmt.Errorf("POST %s: %s", url, resp.Status)
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		return res.FirstID, err
	}
	n := 0
	for i := range rounds {
		body := g.Body(100, time.Now().UnixMilli())
		if _, err := post(baseURL+"/ingest", body); err != nil {
			return n, err
		}
		first, err := post(corrURL+"/ingest", body)
		if err != nil {
			return n, err
		}
		id := first + uint64(i*37%100)
		if _, err := post(fmt.Sprintf("%s/events/%d/corrections", corrURL, id), []byte(`{"false_positive":true,"note":"bench"}`)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
