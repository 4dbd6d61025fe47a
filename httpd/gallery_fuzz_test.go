package httpd_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/securevision/events/httpd"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
)

// FuzzGalleryFromEvent posts arbitrary JSON bodies to POST
// /people/{name}/faces on a real store holding a face with a frame
// snapshot, one with a scaled snapshot and snapshot_bbox, one without a
// snapshot and a plate. Every answer is 201, 404, 413 or 422 in FastAPI's
// shape, and a 201's image is a JPEG no larger than its snapshot.
func FuzzGalleryFromEvent(f *testing.F) {
	// In memory: a 201 appends, and minimising an input that gets one
	// must not wait for a disk's fsync at every step.
	st := storetest.Open(f, storetest.Options{FS: vfs.NewMem()})
	now := time.Now().UnixMilli()
	for _, ev := range []ingest.Event{
		{Type: vocab.FaceMatch, TsMs: now, Source: "cam", Face: &ingest.Face{PersonName: "A", Similarity: 0.5, BBox: ingest.BBox{10, 10, 90, 70}},
			Snapshot: testJPEG(f, 120, 100)},
		{Type: vocab.FaceMatch, TsMs: now, Source: "cam", Face: &ingest.Face{PersonName: "A", Similarity: 0.5, BBox: ingest.BBox{400, 300, 480, 400}},
			Snapshot: testJPEG(f, 64, 80), Extra: map[string]json.RawMessage{"snapshot_bbox": json.RawMessage("[384,280,496,420]")}},
		storetest.Face("cam", now, "B"),
		storetest.Plate("cam", now, "ABC123"),
	} {
		st.Append(f, ev)
	}
	api, err := httpd.New(httpd.Options{Log: st.Log, View: st.View, Ingest: st.Ingest, Gatherer: st.Reg, Registerer: st.Reg})
	if err != nil {
		f.Fatal(err)
	}
	h := api.Handler()
	for _, s := range []string{
		`{"from_event":1}`, `{"from_event":2}`, `{"from_event":3}`, `{"from_event":4}`, `{"from_event":0}`,
		`{"from_event":18446744073709551615}`, `{"from_event":18446744073709551616}`, `{"from_event":1.5}`,
		`{"from_event":-1}`, `{"from_event":null}`, `{"from_event":"1"}`, `{}`, `[]`, `null`, ``, `{"from_event":1}{}`,
		`{"from_event":1,"from_event":2}`, `{"FROM_EVENT":1}`, `{"from_event":1e0}`, `{"from_event":01}`,
		strings.Repeat(" ", 100) + `{"from_event":1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/people/Ann/faces", strings.NewReader(body)))
		switch w.Code {
		case 201:
			var ev struct {
				ID      uint64 `json:"id"`
				Type    string `json:"type"`
				Payload struct {
					FromEvent uint64 `json:"from_event"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &ev); err != nil || ev.Type != vocab.GalleryChange {
				t.Fatalf("201 %s", w.Body)
			}
			img, err := st.Log.Snapshot(ev.ID)
			if err != nil {
				t.Fatalf("gallery image of %d: %v", ev.ID, err)
			}
			src, err := st.Log.Snapshot(ev.Payload.FromEvent)
			if err != nil {
				t.Fatalf("201 from %d, which has no snapshot: %v", ev.Payload.FromEvent, err)
			}
			c, err1 := jpeg.DecodeConfig(bytes.NewReader(img))
			s, err2 := jpeg.DecodeConfig(bytes.NewReader(src))
			if err1 != nil || err2 != nil || c.Width < 1 || c.Height < 1 || c.Width > s.Width || c.Height > s.Height {
				t.Fatalf("crop %+v of a %+v snapshot: %v %v", c, s, err1, err2)
			}
		case 404, 413, 422:
			var detail struct {
				Detail any `json:"detail"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &detail); err != nil || detail.Detail == nil {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzCropRect: CropRect never panics, and a crop it accepts is a
// non-empty rectangle inside the snapshot.
func FuzzCropRect(f *testing.F) {
	f.Add(10.0, 10.0, 90.0, 70.0, false, 0.0, 0.0, 0.0, 0.0, 120, 100)
	f.Add(400.0, 300.0, 480.0, 400.0, true, 384.0, 280.0, 496.0, 420.0, 64, 80)
	f.Add(0.0, 0.0, 1e308, 1e308, true, 0.0, 0.0, 1e-308, 1e-308, 640, 480)
	f.Add(-1.0, -1.0, 5.0, 5.0, false, 0.0, 0.0, 0.0, 0.0, 4, 4)
	f.Add(math.NaN(), 0.0, 1.0, 1.0, true, math.Inf(1), 0.0, 1.0, 1.0, 1, 1)
	f.Fuzz(func(t *testing.T, x1, y1, x2, y2 float64, hasSB bool, s1, s2, s3, s4 float64, w, h int) {
		if w < 1 || h < 1 || w > 1<<15 || h > 1<<15 {
			return
		}
		var sb *[4]float64
		if hasSB {
			sb = &[4]float64{s1, s2, s3, s4}
		}
		bounds := image.Rect(0, 0, w, h)
		r, err := httpd.CropRect([4]float64{x1, y1, x2, y2}, sb, bounds)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if r.Empty() || !r.In(bounds) {
			t.Fatalf("crop %v of %v (bbox %v %v %v %v, snapshot_bbox %v)", r, bounds, x1, y1, x2, y2, sb)
		}
	})
}
