package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/projections"
)

// runVerify checks a store offline; exit 0 when consistent, 1 with the
// problems listed otherwise, 2 when it cannot be opened.
func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("store", envOr("SECUREVISION__EVENTS__DB_URL", "pebble://data/events"), "store URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		*dbURL = fs.Arg(0)
	}
	if dir, mem, err := eventlog.ParseURL(*dbURL); err != nil || mem {
		fmt.Fprintf(stderr, "securevision verify: %q: a directory store is needed (%v)\n", *dbURL, err)
		return 2
	} else if _, err := os.Stat(dir); err != nil {
		fmt.Fprintf(stderr, "securevision verify: %v\n", err)
		return 2
	}
	c, err := core.Open(core.Options{URL: *dbURL, ReadOnly: true})
	if err != nil {
		fmt.Fprintf(stderr, "securevision verify: %v\n", err)
		return 2
	}
	defer c.Close()
	rep, err := projections.Verify(c.Log())
	if err != nil {
		fmt.Fprintf(stderr, "securevision verify: read failed: %v\n", err)
		return 1
	}
	if len(rep.Problems) > 0 {
		for _, p := range rep.Problems {
			fmt.Fprintf(stderr, "securevision verify: %s\n", p)
		}
		fmt.Fprintf(stderr, "securevision verify: FAILED: %d problem(s) in %s\n", len(rep.Problems), *dbURL)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d events, ids %d..%d, low-water id %d\n", rep.Events, rep.FirstID, rep.LastID, rep.LowWater)
	if rep.UncoveredSource > 0 {
		fmt.Fprintf(stdout, "note: %d source index entries hold no record copy (SOURCE_INDEX=keys, or written before the covering index); source queries read those records from the log\n", rep.UncoveredSource)
	}
	return 0
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

// runExport writes events with id > --after as NDJSON, from a store
// (--store) or a running server (--server), oldest first.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("store", "", "store URL to read (offline)")
	server := fs.String("server", "", "server base URL to read, e.g. http://127.0.0.1:8000 (pages refused with 429 or 503 are retried after Retry-After)")
	token := fs.String("token", os.Getenv("SECUREVISION__API__AUTH_TOKEN"), "bearer token for --server")
	after := fs.Uint64("after", 0, "export events with id greater than this")
	out := fs.String("o", "-", "output file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*dbURL == "") == (*server == "") {
		fmt.Fprintln(stderr, "securevision export: give exactly one of --store or --server")
		return 2
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "securevision export: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var n int
	var err error
	if *dbURL != "" {
		n, err = exportStore(*dbURL, *after, bw)
	} else {
		n, err = exportServer(ctx, *server, *token, *after, bw)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "securevision export: after %d events: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stderr, "exported %d events\n", n)
	return 0
}

func exportStore(dbURL string, after uint64, w io.Writer) (int, error) {
	c, err := core.Open(core.Options{URL: dbURL, ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	l := c.Log()
	if after >= l.LastID() {
		return 0, nil // nothing after it (and after+1 would wrap at the top)
	}
	it, err := l.NewLogIter(after+1, l.LastID())
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		_, _, _, js, err := eventlog.SplitValue(it.Value())
		if err != nil {
			return n, fmt.Errorf("record %d: %w", eventlog.KeyID(it.Key()), err)
		}
		if _, err := w.Write(append(js, '\n')); err != nil {
			return n, err
		}
		n++
	}
	return n, it.Error()
}

// exportServer follows the server's next links (order=asc from the cursor).
// A page refused for now (429, 503) is asked again after Retry-After; see
// getPage.
func exportServer(ctx context.Context, base, token string, after uint64, w io.Writer) (int, error) {
	next := strings.TrimRight(base, "/") + "/events?order=asc&limit=1000&after=" + strconv.FormatUint(after, 10)
	client := &http.Client{Timeout: time.Minute}
	n := 0
	for next != "" {
		page, err := url.Parse(next)
		if err != nil {
			return n, err
		}
		body, hdr, err := getPage(ctx, client, page, token)
		if err != nil {
			return n, err
		}
		items, err := splitArray(body)
		if err != nil {
			return n, err
		}
		for _, it := range items {
			if _, err := w.Write(append(it, '\n')); err != nil {
				return n, err
			}
			n++
		}
		next = ""
		if l := linkNext(hdr.Get("Link")); l != "" {
			// The server sends a relative reference: resolve it against
			// the page it came with.
			ref, err := url.Parse(l)
			if err != nil {
				return n, fmt.Errorf("%s: next link %q: %w", page, l, err)
			}
			next = page.ResolveReference(ref).String()
		}
	}
	return n, nil
}

// Retries of one page that the server refuses for now (429 Too Many
// Requests from its rate limit, 503 Service Unavailable): at most
// exportRetries in a row, each after the response's Retry-After (seconds
// or an HTTP date; exportDefaultWait without one) capped at exportMaxWait,
// so a wrong or hostile header cannot stall an export for long.
const (
	exportRetries     = 5
	exportMaxWait     = 30 * time.Second
	exportDefaultWait = time.Second
)

// getPage GETs page and returns the body and headers of its 200 answer,
// waiting and asking again on 429 and 503 (see exportRetries) until ctx
// is done.
func getPage(ctx context.Context, client *http.Client, page *url.URL, token string) ([]byte, http.Header, error) {
	for retries := 0; ; retries++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, page.String(), nil)
		if err != nil {
			return nil, nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode == http.StatusOK {
			return body, resp.Header, nil
		}
		refused := fmt.Errorf("%s: %s: %s", page, resp.Status, strings.TrimSpace(string(body)))
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			return nil, nil, refused
		}
		if retries == exportRetries {
			return nil, nil, fmt.Errorf("%w (gave up after %d retries)", refused, retries)
		}
		t := time.NewTimer(retryAfter(resp.Header.Get("Retry-After"), time.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("%w (waiting to retry: %w)", refused, ctx.Err())
		case <-t.C:
		}
	}
}

// retryAfter is the wait a Retry-After header asks for (RFC 9110 §10.2.3:
// delay-seconds or an HTTP date), within [0, exportMaxWait];
// exportDefaultWait when it is missing or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return exportDefaultWait
	}
	// An overflowing number parses as the largest uint64 with ErrRange.
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs >= uint64(exportMaxWait/time.Second) {
			return exportMaxWait
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), exportMaxWait)
	}
	return exportDefaultWait
}

// linkNext extracts the rel="next" target of an RFC 8288 Link header.
func linkNext(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if ok && strings.Contains(params, `rel="next"`) {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

// runImport loads NDJSON (an export) through the normal ingest path, in
// batches, into a store or a running server. Imported events get new ids
// and created_at; type, ts_ms, source and payload are kept.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("store", "", "store URL to write")
	server := fs.String("server", "", "server base URL to POST /ingest to")
	token := fs.String("token", os.Getenv("SECUREVISION__API__AUTH_TOKEN"), "bearer token for --server")
	in := fs.String("i", "-", "input NDJSON file (- for stdin)")
	batch := fs.Int("batch", 1000, "events per append")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*dbURL == "") == (*server == "") || *batch < 1 || *batch > ingest.MaxItems {
		fmt.Fprintf(stderr, "securevision import: give exactly one of --store or --server, and 1 <= --batch <= %d\n", ingest.MaxItems)
		return 2
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "securevision import: %v\n", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	var send func([]byte) (int, error)
	if *dbURL != "" {
		sink, closeFn, err := openSink(ctx, *dbURL)
		if err != nil {
			fmt.Fprintf(stderr, "securevision import: %v\n", err)
			return 1
		}
		defer closeFn()
		send = func(nd []byte) (int, error) {
			evs, err := ingest.Decode(strings.NewReader(string(nd)), true)
			if err != nil {
				return 0, err
			}
			res, err := sink.Append(ctx, evs)
			return res.Count, err
		}
	} else {
		send = func(nd []byte) (int, error) { return postNDJSON(ctx, *server, *token, nd) }
	}
	n, err := importLines(r, *batch, send)
	if err != nil {
		fmt.Fprintf(stderr, "securevision import: after %d events: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d events\n", n)
	return 0
}

// importLines strips the fields the log assigns (id, created_at) from each
// exported line and sends batches.
func importLines(r io.Reader, batch int, send func([]byte) (int, error)) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), ingest.MaxBodyBytes)
	var buf []byte
	pending, total, line := 0, 0, 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		n, err := send(buf)
		total += n
		buf, pending = buf[:0], 0
		return err
	}
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		stripped, err := stripAssigned([]byte(b))
		if err != nil {
			return total, fmt.Errorf("line %d: %w", line, err)
		}
		buf = append(append(buf, stripped...), '\n')
		pending++
		if pending == batch {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return total, err
	}
	return total, flush()
}

func postNDJSON(ctx context.Context, base, token string, nd []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/ingest", strings.NewReader(string(nd)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /ingest: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var res ingest.Result
	if err := jsonUnmarshal(body, &res); err != nil {
		return 0, err
	}
	return res.Count, nil
}

var errNotObject = errors.New("not a JSON object")

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// splitArray splits a JSON array into its raw items.
func splitArray(b []byte) ([]json.RawMessage, error) {
	var items []json.RawMessage
	err := json.Unmarshal(b, &items)
	return items, err
}

// stripAssigned removes id and created_at from an exported event.
func stripAssigned(line []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errNotObject
	}
	delete(obj, "id")
	delete(obj, "created_at")
	return json.Marshal(obj)
}
