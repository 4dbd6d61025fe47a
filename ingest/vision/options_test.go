package vision

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/vocab"
)

func TestParseSources(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Source
		wantErr string
	}{
		{in: "", want: nil},
		{in: " ; ", want: nil},
		{in: "camera_front_door=rtsp://10.0.0.2/live?a=b;camera_driveway=/videos/drive.mp4",
			want: []Source{{"camera_front_door", "rtsp://10.0.0.2/live?a=b"}, {"camera_driveway", "/videos/drive.mp4"}}},
		{in: " cam 1 = 0 ;", want: []Source{{"cam 1", "0"}}},
		{in: "nourl", wantErr: "want ID=URL"},
		{in: "=x", wantErr: "empty source id"},
		{in: "a=", wantErr: "empty URL"},
		{in: "a=1;a=2", wantErr: `"a" already used by entry 1`},
		{in: "a\x01=1", wantErr: "unprintable"},
		{in: strings.Repeat("x", vocab.MaxSourceLen+1) + "=1", wantErr: "at most " + strconv.Itoa(vocab.MaxSourceLen)},
	} {
		got, err := ParseSources(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSources(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSources(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseSources(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseSources(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestSourceKind(t *testing.T) {
	for url, want := range map[string]string{
		"rtsp://cam/live": "stream", "http://x/mjpg": "stream", "0": "device", "/dev/video2": "device",
		"/videos/a.mp4": "file", "file:///v/a.mp4": "file", "rel/a.avi": "file",
	} {
		if got := (Source{ID: "a", URL: url}).Kind(); got != want {
			t.Errorf("Kind(%q) = %s, want %s", url, got, want)
		}
	}
}

func TestParseRegions(t *testing.T) {
	got, err := ParseRegions("camera_driveway=US-CA; *=EU-DE")
	if err != nil || got["camera_driveway"] != "US-CA" || got["*"] != "EU-DE" || len(got) != 2 {
		t.Fatalf("ParseRegions = %v, %v", got, err)
	}
	o := Options{Regions: got}
	if o.region("camera_driveway") != "US-CA" || o.region("other") != "EU-DE" {
		t.Fatal("region lookup")
	}
	// The limit counts characters, as ingest's validation does.
	if got, err := ParseRegions("a=" + strings.Repeat("東", vocab.MaxRegionLen)); err != nil || len(got["a"]) != 3*vocab.MaxRegionLen {
		t.Fatalf("a region of %d three-byte characters: %v", vocab.MaxRegionLen, err)
	}
	for _, bad := range []string{"a", "a=", "a=1;a=2", "a=" + strings.Repeat("x", vocab.MaxRegionLen+1), "a=\x00"} {
		if _, err := ParseRegions(bad); err == nil {
			t.Errorf("ParseRegions(%q) succeeded", bad)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Sources: []Source{{"a", "x.mp4"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"fps":       {FPS: -1},
		"fps high":  {FPS: 1000},
		"threshold": {Threshold: 1.5},
		"dup":       {Sources: []Source{{"a", "1"}, {"a", "2"}}},
		"region":    {Sources: []Source{{"a", "1"}}, Regions: map[string]string{"b": "US"}},
		"gallery":   {GalleryDir: "/nonexistent/gallery"},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded", name)
		}
	}
}

func FuzzParseSources(f *testing.F) {
	for _, s := range []string{"a=b", "camera_front_door=rtsp://x;camera_driveway=/v.mp4", "a=1;a=2", ";;=;", "x=y=z", "\xff=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		srcs, err := ParseSources(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, src := range srcs {
			if validateID(src.ID) != nil || src.URL == "" || seen[src.ID] {
				t.Fatalf("ParseSources(%q) returned invalid %v", s, srcs)
			}
			seen[src.ID] = true
		}
		if err := (Options{Sources: srcs}).Validate(); err != nil {
			t.Fatalf("parsed sources do not validate: %v", err)
		}
		// Round trip.
		var parts []string
		for _, src := range srcs {
			parts = append(parts, src.ID+"="+src.URL)
		}
		again, err := ParseSources(strings.Join(parts, ";"))
		if err != nil || len(again) != len(srcs) {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
		_, _ = ParseRegions(s)
	})
}

func ev(ts int64, name string) ingest.Event {
	return ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: "cam", Face: &ingest.Face{PersonName: name}}
}

// TestDedup drives the cooldown rule with a fake clock (frame times).
func TestDedup(t *testing.T) {
	d := newDeduper(10 * time.Second)
	builds := 0
	offer := func(key string, ts int64, score float64) {
		d.offer(key, ts, score, func() ingest.Event { builds++; e := ev(ts, key); e.Face.Similarity = score; return e })
	}
	offer("alice", 1000, 0.7)
	offer("alice", 2000, 0.9) // best
	offer("alice", 3000, 0.8)
	offer("bob", 4000, 0.6)
	if got := d.expire(10_999); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	got := d.expire(11_000) // alice's window [1000, 11000) closed
	if len(got) != 1 || got[0].TsMs != 2000 || got[0].Face.Similarity != 0.9 {
		t.Fatalf("alice: %+v", got)
	}
	if builds != 3 {
		t.Errorf("built %d events, want 3 (only improvements build)", builds)
	}
	offer("alice", 12_000, 0.5) // new window
	// A sighting after bob's window closed, without expire in between,
	// closes bob's window first.
	offer("bob", 15_000, 0.1)
	got = d.expire(15_000)
	if len(got) != 1 || got[0].Face.PersonName != "bob" || got[0].TsMs != 4000 {
		t.Fatalf("bob: %+v", got)
	}
	got = d.flush()
	if len(got) != 2 || got[0].Face.PersonName != "alice" || got[1].Face.PersonName != "bob" {
		t.Fatalf("flush: %+v", got)
	}
	if d.pending() != 0 {
		t.Fatal("pending after flush")
	}

	// Negative cooldown: every sighting is an event.
	d = newDeduper(-1)
	offer("x", 1, 0.1)
	offer("x", 2, 0.1)
	if got := d.expire(2); len(got) != 2 {
		t.Fatalf("no-dedup: %+v", got)
	}
}

func TestLBPDescriptor(t *testing.T) {
	const w, h = 64, 64
	px := make([]byte, w*h)
	for i := range px {
		px[i] = byte((i*7 + i/w*13) % 251)
	}
	d := lbpDescriptor(px, w, h, w)
	var sum float64
	for _, v := range d {
		sum += float64(v)
	}
	if len(d) != DescriptorLen || sum < 0.999 || sum > 1.001 {
		t.Fatalf("len %d sum %v", len(d), sum)
	}
	if chiSquare(d, d) != 0 || similarity(0) != 1 || similarity(2) != 0 || similarity(3) != 0 {
		t.Fatal("distance/similarity bounds")
	}
	flat := lbpDescriptor(make([]byte, w*h), w, h, w)
	if x := chiSquare(d, flat); x <= 0 || x > 2 {
		t.Fatalf("chi-square %v out of (0,2]", x)
	}
}
