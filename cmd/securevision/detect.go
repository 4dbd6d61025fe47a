package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/ingest/vision"
	"github.com/securevision/events/ingest/watchlist"
)

// detectHTTPTimeout bounds one POST /ingest of the detect command: a batch
// is a few events with small JPEGs; a server that needs longer is down.
const detectHTTPTimeout = 30 * time.Second

// runDetect implements
//
//	securevision detect --source cam=PATH [--gallery DIR] [--store URL | --server URL] [--token T]
//
// It analyses one video or image file and appends the events to a store
// (default pebble://data/events) or POSTs them to a running server.
func runDetect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "the file to analyse, as SOURCE_ID=PATH (video or image)")
	gallery := fs.String("gallery", "", "face gallery directory: DIR/<person name>/*.jpg")
	store := fs.String("store", "pebble://data/events", "store URL to append to (ignored with --server)")
	server := fs.String("server", "", "POST events to this server's /ingest instead of opening a store, e.g. http://127.0.0.1:8000")
	token := fs.String("token", "", "bearer token for --server")
	fps := fs.Float64("fps", vision.DefaultFPS, "frames analysed per second of video")
	threshold := fs.Float64("threshold", vision.DefaultThreshold, "face similarity below which a face is \"unknown\"")
	cooldown := fs.Duration("cooldown", vision.DefaultCooldown, "one event per person/plate per source within this window")
	region := fs.String("region", "", "plate region reported in plate_read events, e.g. US-CA")
	white := fs.String("whitelist", "", "plate whitelist file (one plate per line)")
	black := fs.String("blacklist", "", "plate blacklist file (one plate per line)")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "securevision detect: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if !vision.Available() {
		fmt.Fprintln(stderr, "securevision detect: this binary was built without OpenCV; rebuild with -tags gocv (needs libopencv-dev 4.6, libtesseract-dev)")
		return 2
	}
	srcs, err := vision.ParseSources(*source)
	if err != nil || len(srcs) != 1 {
		if err == nil {
			err = errors.New("exactly one --source SOURCE_ID=PATH is required")
		}
		fmt.Fprintf(stderr, "securevision detect: --source: %v\n", err)
		return 2
	}
	opts := vision.DetectOptions{Source: srcs[0], Options: vision.Options{
		FPS: *fps, GalleryDir: *gallery, Threshold: *threshold, Cooldown: *cooldown,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}}
	if *region != "" {
		opts.Regions = map[string]string{"*": *region}
	}
	if *white != "" || *black != "" {
		wl, err := watchlist.New(watchlist.Options{Whitelist: *white, Blacklist: *black, Logger: opts.Logger})
		if err != nil {
			fmt.Fprintf(stderr, "securevision detect: %v\n", err)
			return 2
		}
		opts.Lists = wl
	}

	var sink ingest.Sink
	closeSink := func() error { return nil }
	if *server != "" {
		sink = &httpSink{url: strings.TrimRight(*server, "/") + "/ingest", token: *token,
			client: &http.Client{Timeout: detectHTTPTimeout}}
	} else {
		sink, closeSink, err = openSink(ctx, *store)
		if err != nil {
			fmt.Fprintf(stderr, "securevision detect: open store %s: %v\n", *store, err)
			return 1
		}
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	sum, err := vision.Detect(ctx, opts, sink, progress)
	cerr := closeSink()
	if err == nil {
		err = cerr
	}
	if sum.Decoded > 0 {
		fmt.Fprintln(stdout, sum.String())
	}
	if err != nil {
		fmt.Fprintf(stderr, "securevision detect: %v\n", err)
		return 1
	}
	return 0
}

// httpSink POSTs batches to a server's /ingest as a JSON array.
type httpSink struct {
	url    string
	token  string
	client *http.Client
}

func (s *httpSink) Append(ctx context.Context, evs []ingest.Event) (ingest.Result, error) {
	body, err := encodeIngestItems(evs)
	if err != nil {
		return ingest.Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return ingest.Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Result{}, fmt.Errorf("POST %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return ingest.Result{}, fmt.Errorf("POST %s: %s: %s", s.url, resp.Status, bytes.TrimSpace(rb))
	}
	var res ingest.Result
	if err := json.Unmarshal(rb, &res); err != nil {
		return ingest.Result{}, fmt.Errorf("POST %s: bad answer %q: %w", s.url, rb, err)
	}
	return res, nil
}

// ingestItem is one element of a POST /ingest body: the fields a client
// sends (docs/api.md, "The event model" and "Item fields").
type ingestItem struct {
	Type         string         `json:"type"`
	TsMs         int64          `json:"ts_ms"`
	Source       string         `json:"frame_source_id"`
	Payload      map[string]any `json:"payload"`
	SnapshotJPEG string         `json:"snapshot_jpeg,omitempty"`
}

func encodeIngestItems(evs []ingest.Event) ([]byte, error) {
	items := make([]ingestItem, 0, len(evs))
	for _, e := range evs {
		it := ingestItem{Type: e.Type, TsMs: e.TsMs, Source: e.Source, Payload: map[string]any{}}
		switch {
		case e.Face != nil:
			f := e.Face
			it.Payload["person_name"] = f.PersonName
			it.Payload["similarity"] = f.Similarity
			it.Payload["bbox"] = f.BBox
			if f.EmbeddingDistance != nil {
				it.Payload["embedding_distance"] = *f.EmbeddingDistance
			}
		case e.Plate != nil:
			p := e.Plate
			it.Payload["plate_text"] = p.PlateText
			it.Payload["confidence"] = p.Confidence
			it.Payload["region"] = p.Region
			if p.ListMatchSet {
				if p.ListMatch == "" {
					it.Payload["list_match"] = nil
				} else {
					it.Payload["list_match"] = p.ListMatch
				}
			}
			if p.BBox != nil {
				it.Payload["bbox"] = *p.BBox
			}
		default:
			return nil, fmt.Errorf("event of type %q without payload", e.Type)
		}
		for k, v := range e.Extra {
			it.Payload[k] = v
		}
		if len(e.Snapshot) > 0 {
			it.SnapshotJPEG = base64.StdEncoding.EncodeToString(e.Snapshot)
		}
		items = append(items, it)
	}
	return json.Marshal(items)
}
