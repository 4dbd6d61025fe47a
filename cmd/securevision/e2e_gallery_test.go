//go:build gocv

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestGalleryEnrolLive: a camera (Megamind.avi served over HTTP, which the
// pipeline reads as a live stream and reopens when it ends, so the clip
// plays again and again) yields "unknown" faces with no gallery; one of
// them is enrolled through POST /people/Megamind/faces {"from_event"},
// and the running pipeline recognises that face as Megamind on later
// plays, without a restart.
func TestGalleryEnrolLive(t *testing.T) {
	if _, err := os.Stat(megamind); err != nil {
		t.Skipf("SKIPPED: %s missing (make deps installs opencv-doc)", megamind)
	}
	var plays atomic.Int64
	cam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") == "" || r.Header.Get("Range") == "bytes=0-" {
			plays.Add(1)
		}
		http.ServeFile(w, r, megamind)
	}))
	defer cam.Close()
	s := startServer(t, "SECUREVISION__INGEST__SOURCES=camera_front_door="+cam.URL+"/megamind.avi",
		"SECUREVISION__INGEST__COOLDOWN=1s", "SECUREVISION__INGEST__FPS=25")

	type event struct {
		ID      uint64 `json:"id"`
		Payload struct {
			PersonName string     `json:"person_name"`
			BBox       [4]float64 `json:"bbox"`
			SnapBBox   *[]float64 `json:"snapshot_bbox"`
		} `json:"payload"`
	}
	faces := func(after uint64) []event {
		t.Helper()
		var evs []event
		getJSON(t, fmt.Sprintf("%s/events?type=face_match&after=%d&limit=1000", s.base, after), &evs)
		return evs
	}
	// 1. No gallery: every face is unknown.
	var pick event
	deadline := time.Now().Add(3 * time.Minute)
	for pick.ID == 0 && time.Now().Before(deadline) {
		for _, ev := range faces(0) {
			if ev.Payload.PersonName != "unknown" {
				t.Fatalf("a face recognised with no gallery: %+v", ev)
			}
			// The largest face is the best enrolment.
			if ev.Payload.SnapBBox != nil && area(ev.Payload.BBox) > area(pick.Payload.BBox) {
				pick = ev
			}
		}
		if pick.ID == 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if pick.ID == 0 {
		t.Fatal("no face_match with a snapshot from the camera")
	}
	// 2. Enrol it.
	r, err := http.Post(s.base+"/people/Megamind/faces", "application/json", bytes.NewReader(fmt.Appendf(nil, `{"from_event":%d}`, pick.ID)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 201 {
		t.Fatalf("enrol: %d %s", r.StatusCode, b)
	}
	var add struct {
		ID uint64 `json:"id"`
	}
	json.Unmarshal(b, &add)
	// The stored face is the bbox, cut out of the snapshot.
	img := getBytes(t, fmt.Sprintf("%s/events/%d/snapshot.jpg", s.base, add.ID))
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(img))
	bw, bh := int(pick.Payload.BBox[2]-pick.Payload.BBox[0]), int(pick.Payload.BBox[3]-pick.Payload.BBox[1])
	if err != nil || abs(cfg.Width-bw) > 1 || abs(cfg.Height-bh) > 1 {
		t.Fatalf("enrolled image %+v (%v), want the bbox's %d×%d", cfg, err, bw, bh)
	}
	playsAtEnrol := plays.Load()
	// 3. Later plays recognise the face: the pipeline reloaded its
	// gallery without a restart.
	deadline = time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		for _, ev := range faces(add.ID) {
			if ev.Payload.PersonName == "Megamind" {
				t.Logf("event %d recognised as Megamind (enrolled from %d; plays %d → %d)", ev.ID, pick.ID, playsAtEnrol, plays.Load())
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no face recognised as Megamind after the enrolment (plays %d → %d)", playsAtEnrol, plays.Load())
}

func area(b [4]float64) float64 { return (b[2] - b[0]) * (b[3] - b[1]) }

func abs(x int) int { return max(x, -x) }

func getBytes(t *testing.T, url string) []byte {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, r.StatusCode, b)
	}
	return b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal(getBytes(t, url), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
