package httpd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/vocab"
)

// testJPEG encodes a w×h image with a gradient, so crops of it differ.
func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// snapFaceJSON is a face_match item with a snapshot and, when sb is set,
// a snapshot_bbox.
func snapFaceJSON(ts int64, name string, bbox ingest.BBox, snap []byte, sb *[4]float64) string {
	ev := &ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: "cam",
		Face: &ingest.Face{PersonName: name, Similarity: 0.5, BBox: bbox}, Snapshot: snap}
	if sb != nil {
		b, _ := json.Marshal(sb)
		ev.Extra = map[string]json.RawMessage{"snapshot_bbox": b}
	}
	return string(ingestbody.Append(nil, ev))
}

// galleryFaces is GET /people/{name}/faces, decoded.
type galleryFace struct {
	FaceID    uint64  `json:"face_id"`
	CreatedAt string  `json:"created_at"`
	FromEvent *uint64 `json:"from_event"`
	ImageURL  string  `json:"image_url"`
}

func (e *env) faces(t *testing.T, name string) []galleryFace {
	t.Helper()
	r := e.do(t, "GET", "/people/"+name+"/faces", "")
	if r.code != 200 {
		t.Fatalf("GET faces of %s: %d %s", name, r.code, r.body)
	}
	var fs []galleryFace
	r.json(t, &fs)
	return fs
}

// image fetches a face's image and decodes its size.
func (e *env) image(t *testing.T, url string) ([]byte, image.Point) {
	t.Helper()
	r := e.do(t, "GET", url, "")
	if r.code != 200 || r.hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET %s: %d %s", url, r.code, r.hdr.Get("Content-Type"))
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("GET %s: not a JPEG: %v", url, err)
	}
	return r.body, image.Pt(cfg.Width, cfg.Height)
}

func TestGalleryAPI(t *testing.T) {
	e := identityEnv(t, "")
	now := time.Now().UnixMilli()
	full := testJPEG(t, 320, 240)
	scaled := testJPEG(t, 160, 200)
	first := e.ingest(t,
		// The snapshot is the frame: the crop is the bbox itself.
		snapFaceJSON(now, "Ann", ingest.BBox{40, 30, 140, 150}, full, nil),
		// The snapshot shows frame region [20,10]-[100,110] at twice its
		// size: bbox [40,30]-[80,90] is [40,40]-[120,160] in it.
		snapFaceJSON(now, "Ann", ingest.BBox{40, 30, 80, 90}, scaled, &[4]float64{20, 10, 100, 110}),
		// No snapshot; a bbox outside the snapshot; a plate.
		faceJSON("cam", now, "Cy"),
		snapFaceJSON(now, "Ann", ingest.BBox{300, 200, 400, 300}, full, nil),
		plateJSON("cam", now, "ABC123"),
	)
	frameFace, scaledFace, noSnap, outside, plate := first, first+1, first+2, first+3, first+4

	if r := e.do(t, "GET", "/people/Nobody/faces", ""); r.code != 404 || !strings.Contains(string(r.body), "Person not found") {
		t.Fatalf("GET faces of a stranger: %d %s", r.code, r.body)
	}
	if fs := e.faces(t, "Cy"); len(fs) != 0 {
		t.Fatalf("Cy has no gallery yet: %v", fs)
	}

	// Enrol from events: the stored images have the bbox's size.
	var added []event
	for _, tc := range []struct {
		from uint64
		size image.Point
	}{{frameFace, image.Pt(100, 120)}, {scaledFace, image.Pt(80, 120)}} {
		r := e.do(t, "POST", "/people/Ann/faces", fmt.Sprintf(`{"from_event":%d}`, tc.from))
		if r.code != 201 {
			t.Fatalf("enrol from %d: %d %s", tc.from, r.code, r.body)
		}
		var ev event
		r.json(t, &ev)
		if ev.Type != vocab.GalleryChange || ev.Source != vocab.OperatorSource || ev.Payload["op"] != "add" ||
			ev.Payload["person_name"] != "Ann" || ev.Payload["from_event"] != float64(tc.from) {
			t.Fatalf("gallery_change %+v", ev)
		}
		if _, size := e.image(t, fmt.Sprintf("/events/%d/snapshot.jpg", ev.ID)); size != tc.size {
			t.Fatalf("crop of %d is %v, want %v", tc.from, size, tc.size)
		}
		added = append(added, ev)
	}
	// The crop is the bbox's pixels: compare with a crop made here.
	img, _ := jpeg.Decode(bytes.NewReader(full))
	want := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(40, 30, 140, 150))
	got, _ := e.image(t, fmt.Sprintf("/events/%d/snapshot.jpg", added[0].ID))
	gotImg, _ := jpeg.Decode(bytes.NewReader(got))
	if d := meanAbsDiff(gotImg, want); d > 4 {
		t.Fatalf("the crop differs from the bbox's pixels by %.1f grey levels on average", d)
	}

	// An upload is stored as sent.
	upload := testJPEG(t, 64, 64)
	r := e.do(t, "POST", "/people/Bob/faces", string(upload), "Content-Type", "image/jpeg")
	if r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	var up event
	r.json(t, &up)
	if _, ok := up.Payload["from_event"]; ok {
		t.Fatalf("upload has from_event: %+v", up)
	}
	if b, _ := e.image(t, fmt.Sprintf("/events/%d/snapshot.jpg", up.ID)); !bytes.Equal(b, upload) {
		t.Fatal("the uploaded image is not served as sent")
	}

	var pngBody bytes.Buffer
	png.Encode(&pngBody, image.NewGray(image.Rect(0, 0, 8, 8)))
	huge := slices.Clone(upload)
	setJPEGSize(t, huge, 60000, 60000)
	for _, tc := range []struct {
		name, path, body, ct string
		code                 int
		detail               string
	}{
		{"no such event", "/people/Ann/faces", `{"from_event":999999}`, "", 404, "Event not found"},
		{"a plate", "/people/Ann/faces", fmt.Sprintf(`{"from_event":%d}`, plate), "", 422, "not a face_match"},
		{"no snapshot", "/people/Ann/faces", fmt.Sprintf(`{"from_event":%d}`, noSnap), "", 422, "has no snapshot"},
		{"bbox outside", "/people/Ann/faces", fmt.Sprintf(`{"from_event":%d}`, outside), "", 422, "outside"},
		{"gallery event", "/people/Ann/faces", fmt.Sprintf(`{"from_event":%d}`, up.ID), "", 422, "not a face_match"},
		{"missing", "/people/Ann/faces", `{}`, "", 422, "Field required"},
		{"not an id", "/people/Ann/faces", `{"from_event":"7"}`, "", 422, "wrong type"},
		{"negative", "/people/Ann/faces", `{"from_event":-1}`, "", 422, "wrong type"},
		{"extra member", "/people/Ann/faces", `{"from_event":1,"x":1}`, "", 422, "Extra inputs"},
		{"not JSON", "/people/Ann/faces", `from_event=1`, "", 422, "JSON decode error"},
		{"unknown", "/people/unknown/faces", string(upload), "image/jpeg", 422, "unrecognised faces"},
		{"png", "/people/Ann/faces", pngBody.String(), "image/png", 415, "image/jpeg"},
		{"form", "/people/Ann/faces", "from_event=1", "application/x-www-form-urlencoded", 415, "image/jpeg"},
		{"png as jpeg", "/people/Ann/faces", pngBody.String(), "image/jpeg", 422, "not a JPEG"},
		{"truncated", "/people/Ann/faces", string(upload[:len(upload)/2]), "image/jpeg", 422, "not a valid JPEG"},
		{"empty", "/people/Ann/faces", "", "image/jpeg", 422, "empty"},
		{"60000x60000", "/people/Ann/faces", string(huge), "image/jpeg", 422, "pixels"},
		{"oversized", "/people/Ann/faces", strings.Repeat("x", vocab.MaxSnapshotBytes+1), "image/jpeg", 413, "Image too large"},
	} {
		hdr := []string{}
		if tc.ct != "" {
			hdr = []string{"Content-Type", tc.ct}
		}
		r := e.do(t, "POST", tc.path, tc.body, hdr...)
		if r.code != tc.code || !strings.Contains(string(r.body), tc.detail) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, r.code, r.body, tc.code, tc.detail)
		}
	}
	// Oversized without a Content-Length: refused while reading.
	req, _ := http.NewRequest("POST", e.srv.URL+"/people/Ann/faces",
		io.MultiReader(bytes.NewReader(upload), strings.NewReader(strings.Repeat("x", vocab.MaxSnapshotBytes))))
	req.Header.Set("Content-Type", "image/jpeg")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked oversized upload: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	fs := e.faces(t, "Ann")
	if len(fs) != 2 || fs[0].FaceID != added[0].ID || fs[1].FaceID != added[1].ID || *fs[0].FromEvent != frameFace ||
		fs[0].ImageURL != fmt.Sprintf("/events/%d/snapshot.jpg", added[0].ID) || fs[0].CreatedAt != added[0].CreatedAt {
		t.Fatalf("Ann's faces: %+v", fs)
	}
	if fs := e.faces(t, "Bob"); len(fs) != 1 || fs[0].FromEvent != nil {
		t.Fatalf("Bob's faces: %+v", fs)
	}
	// The image through the person's gallery: the same bytes.
	if b, _ := e.image(t, fmt.Sprintf("/people/Bob/faces/%d", up.ID)); !bytes.Equal(b, upload) {
		t.Fatal("GET /people/Bob/faces/{id} is not the upload")
	}
	for _, p := range []string{fmt.Sprintf("/people/Ann/faces/%d", up.ID), "/people/Bob/faces/1", "/people/Bob/faces/x"} {
		if r := e.do(t, "GET", p, ""); r.code != 404 && r.code != 422 || r.hdr.Get("Content-Type") == "image/jpeg" {
			t.Errorf("GET %s: %d", p, r.code)
		}
	}

	// Removal.
	for _, tc := range []struct {
		path string
		code int
	}{
		{fmt.Sprintf("/people/Bob/faces/%d", added[0].ID), 404}, // Ann's face
		{"/people/Nobody/faces/1", 404},
		{fmt.Sprintf("/people/Ann/faces/%d", frameFace), 404}, // a detection, not a face
		{"/people/Ann/faces/abc", 422},
	} {
		if r := e.do(t, "DELETE", tc.path, ""); r.code != tc.code {
			t.Errorf("DELETE %s: %d %s, want %d", tc.path, r.code, r.body, tc.code)
		}
	}
	r = e.do(t, "DELETE", fmt.Sprintf("/people/Ann/faces/%d", added[0].ID), "")
	var rm event
	r.json(t, &rm)
	if r.code != 200 || rm.Payload["op"] != "remove" || rm.Payload["face_id"] != float64(added[0].ID) {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if fs := e.faces(t, "Ann"); len(fs) != 1 || fs[0].FaceID != added[1].ID {
		t.Fatalf("Ann's faces after DELETE: %+v", fs)
	}
	if r := e.do(t, "DELETE", fmt.Sprintf("/people/Ann/faces/%d", added[0].ID), ""); r.code != 404 {
		t.Fatalf("second DELETE: %d %s", r.code, r.body)
	}
	// Every change is an event, listed by type; detections alone without.
	var changes []event
	e.do(t, "GET", "/events?type=gallery_change&order=asc", "").json(t, &changes)
	if len(changes) != 4 || changes[3].ID != rm.ID {
		t.Fatalf("gallery_change events: %+v", changes)
	}
	var dets []event
	e.do(t, "GET", "/events", "").json(t, &dets)
	for _, d := range dets {
		if d.Type == vocab.GalleryChange {
			t.Fatalf("GET /events without type lists %+v", d)
		}
	}
}

// TestGalleryRestartAndRetention: retention deletes expired detections
// around the gallery's events but never the gallery, whose images stay
// served, and a restart rebuilds it from the log.
func TestGalleryRestartAndRetention(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	old := time.Now().Add(-60 * 24 * time.Hour).UnixMilli()
	snap := testJPEG(t, 200, 200)
	first := e.ingest(t, snapFaceJSON(old, "Dee", ingest.BBox{50, 50, 150, 170}, snap, nil), faceJSON("cam", old, "Dee"))
	r := e.do(t, "POST", "/people/Dee/faces", fmt.Sprintf(`{"from_event":%d}`, first))
	if r.code != 201 {
		t.Fatalf("enrol: %d %s", r.code, r.body)
	}
	var add event
	r.json(t, &add)
	if r := e.do(t, "POST", "/people/Eve/faces", string(testJPEG(t, 48, 48)), "Content-Type", "image/jpeg"); r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	// Expired detections after the gallery's events too.
	e.ingest(t, faceJSON("cam", old, "Dee"), faceJSON("cam", old, "Eve"))
	want := e.faces(t, "Dee")
	wantImg, size := e.image(t, want[0].ImageURL)
	if size != image.Pt(100, 120) {
		t.Fatalf("crop %v", size)
	}
	for _, cleanup := range []func(){
		func() {
			if _, err := e.store.View.Cleanup(context.Background(), time.Now().Add(-30*24*time.Hour).UnixMilli()); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			if r := e.do(t, "POST", "/cleanup", ""); r.code != 200 {
				t.Fatalf("POST /cleanup: %d %s", r.code, r.body)
			}
		},
	} {
		cleanup()
		if r := e.do(t, "GET", fmt.Sprintf("/events/%d", first), ""); r.code != 404 {
			t.Fatalf("expired detection still there: %d", r.code)
		}
		var dets []event
		e.do(t, "GET", "/events", "").json(t, &dets)
		if len(dets) != 0 {
			t.Fatalf("detections after retention: %+v", dets)
		}
		if got := e.faces(t, "Dee"); !reflect.DeepEqual(got, want) {
			t.Fatalf("faces after retention %+v, want %+v", got, want)
		}
		if b, _ := e.image(t, want[0].ImageURL); !bytes.Equal(b, wantImg) {
			t.Fatal("the gallery image changed")
		}
		var changes []event
		e.do(t, "GET", "/events?type=gallery_change", "").json(t, &changes)
		if len(changes) != 2 {
			t.Fatalf("gallery_change events after retention: %+v", changes)
		}
	}
	// A restart rebuilds the gallery from the log.
	e.srv.Close()
	if err := e.store.Core.Close(); err != nil {
		t.Fatal(err)
	}
	e = identityEnv(t, dir)
	if got := e.faces(t, "Dee"); !reflect.DeepEqual(got, want) {
		t.Fatalf("faces after restart %+v, want %+v", got, want)
	}
	if fs := e.faces(t, "Eve"); len(fs) != 1 {
		t.Fatalf("Eve after restart: %+v", fs)
	}
	if b, _ := e.image(t, want[0].ImageURL); !bytes.Equal(b, wantImg) {
		t.Fatal("the gallery image changed across the restart")
	}
	// And changes after the restart apply on top of the rebuilt state.
	if r := e.do(t, "DELETE", fmt.Sprintf("/people/Dee/faces/%d", add.ID), ""); r.code != 200 {
		t.Fatalf("DELETE after restart: %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", "/people/Dee/faces", ""); r.code != 404 {
		t.Fatalf("Dee without detections or faces: %d %s", r.code, r.body)
	}
}

// setJPEGSize rewrites the frame size in b's SOF header.
func setJPEGSize(t *testing.T, b []byte, w, h int) {
	t.Helper()
	for i := 2; i+9 < len(b); {
		if b[i] != 0xFF {
			t.Fatal("no SOF marker")
		}
		m, n := b[i+1], int(b[i+2])<<8|int(b[i+3])
		if m >= 0xC0 && m <= 0xC2 {
			b[i+5], b[i+6], b[i+7], b[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
			return
		}
		i += 2 + n
	}
	t.Fatal("no SOF marker")
}

// meanAbsDiff is the mean absolute difference of a's and b's grey levels,
// pixel by pixel from their top-left corners; it fails unless the sizes
// match.
func meanAbsDiff(a, b image.Image) float64 {
	if a.Bounds().Size() != b.Bounds().Size() {
		return 1e9
	}
	sum, n := 0.0, 0
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			ga := color.GrayModel.Convert(a.At(a.Bounds().Min.X+x, a.Bounds().Min.Y+y)).(color.Gray).Y
			gb := color.GrayModel.Convert(b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y)).(color.Gray).Y
			sum += max(float64(ga)-float64(gb), float64(gb)-float64(ga))
			n++
		}
	}
	return sum / float64(n)
}

// TestActionsSurviveRestart: the watchlist and gallery projections, which
// live in memory, are rebuilt from the log's type index at start.
func TestActionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	if r := e.do(t, "PUT", "/watchlists/blacklist/ABC123", `{"note":"stolen"}`); r.code != 200 {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if r := e.do(t, "POST", "/people/Eve/faces", string(testJPEG(t, 48, 48)), "Content-Type", "image/jpeg"); r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	e.srv.Close()
	if err := e.store.Core.Close(); err != nil {
		t.Fatal(err)
	}
	e = identityEnv(t, dir)
	var lists map[string][]map[string]any
	e.do(t, "GET", "/watchlists", "").json(t, &lists)
	if len(lists["blacklist"]) != 1 || lists["blacklist"][0]["note"] != "stolen" {
		t.Fatalf("watchlists after restart: %v", lists)
	}
	if fs := e.faces(t, "Eve"); len(fs) != 1 {
		t.Fatalf("gallery after restart: %v", fs)
	}
}

// TestGalleryErasure: DELETE /people/{name} takes the person's gallery
// (events, images, the projection) with it, also across a restart.
func TestGalleryErasure(t *testing.T) {
	dir := t.TempDir()
	e := identityEnv(t, dir)
	now := time.Now().UnixMilli()
	first := e.ingest(t, snapFaceJSON(now, "Zed", ingest.BBox{10, 10, 60, 70}, testJPEG(t, 100, 100), nil))
	if r := e.do(t, "POST", "/people/Zed/faces", fmt.Sprintf(`{"from_event":%d}`, first)); r.code != 201 {
		t.Fatalf("enrol: %d %s", r.code, r.body)
	}
	if r := e.do(t, "POST", "/people/Zed/faces", string(testJPEG(t, 40, 40)), "Content-Type", "image/jpeg"); r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	if r := e.do(t, "POST", "/people/Kim/faces", string(testJPEG(t, 40, 40)), "Content-Type", "image/jpeg"); r.code != 201 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	fs := e.faces(t, "Zed")
	if r := e.do(t, "DELETE", "/people/Zed", ""); r.code != 200 {
		t.Fatalf("erase: %d %s", r.code, r.body)
	}
	check := func(e *env) {
		t.Helper()
		if r := e.do(t, "GET", "/people/Zed/faces", ""); r.code != 404 {
			t.Fatalf("Zed's gallery after erasure: %d %s", r.code, r.body)
		}
		for _, f := range fs {
			if r := e.do(t, "GET", f.ImageURL, ""); r.code != 404 {
				t.Fatalf("erased image %s: %d", f.ImageURL, r.code)
			}
		}
		var changes []event
		e.do(t, "GET", "/events?type=gallery_change", "").json(t, &changes)
		if len(changes) != 1 || changes[0].Payload["person_name"] != "Kim" {
			t.Fatalf("gallery_change events after erasure: %+v", changes)
		}
		if fs := e.faces(t, "Kim"); len(fs) != 1 {
			t.Fatalf("Kim's gallery: %+v", fs)
		}
	}
	check(e)
	e.srv.Close()
	if err := e.store.Core.Close(); err != nil {
		t.Fatal(err)
	}
	check(identityEnv(t, dir))
}
