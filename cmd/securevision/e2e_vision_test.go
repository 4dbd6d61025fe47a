//go:build gocv

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/securevision/events/internal/wstest"
)

const megamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"

// TestVideoSourceEndToEnd: a video file source in serve produces events
// that appear on /events, on /stream and with a snapshot.
func TestVideoSourceEndToEnd(t *testing.T) {
	if _, err := os.Stat(megamind); err != nil {
		t.Skipf("SKIPPED: %s missing (make deps installs opencv-doc)", megamind)
	}
	s := startServer(t, "SECUREVISION__INGEST__SOURCES=camera_front_door="+megamind, "SECUREVISION__INGEST__COOLDOWN=2s")
	// A live stream client connected from the start (after=0 replays too).
	conn, _, err := wstest.Dial(s.base+"/stream?after=0", wstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var evs []struct {
		ID      uint64         `json:"id"`
		Type    string         `json:"type"`
		Source  string         `json:"frame_source_id"`
		Payload map[string]any `json:"payload"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		r, err := http.Get(s.base + "/events?type=face_match&limit=100")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(evs) > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(evs) == 0 {
		t.Fatal("no face_match event from the video source")
	}
	ev := evs[len(evs)-1]
	if ev.Source != "camera_front_door" || ev.Payload["person_name"] == nil || ev.Payload["bbox"] == nil {
		t.Fatalf("event: %+v", ev)
	}
	r, err := http.Get(fmt.Sprintf("%s/events/%d/snapshot.jpg", s.base, ev.ID))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/jpeg" || len(img) < 100 || img[0] != 0xFF || img[1] != 0xD8 {
		t.Fatalf("snapshot: %d %s %d bytes", r.StatusCode, r.Header.Get("Content-Type"), len(img))
	}
	want := fmt.Sprintf(`"id":%d,`, ev.ID)
	for {
		m, err := conn.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("event %d never arrived on /stream: %v", ev.ID, err)
		}
		if bytes.Contains(m, []byte(want)) {
			return
		}
	}
}
