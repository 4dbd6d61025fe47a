//go:build !gocv

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestSourcesNeedVisionBuild: a camera source in a build without OpenCV
// stops start-up with a clear message, before the store is opened.
func TestSourcesNeedVisionBuild(t *testing.T) {
	var stderr bytes.Buffer
	code := runServe(context.Background(), nil, []string{
		"SECUREVISION__EVENTS__DB_URL=memory://",
		"SECUREVISION__INGEST__SOURCES=camera_driveway=/videos/drive.mp4",
		"SECUREVISION__API__PORT=1",
	}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "built without OpenCV") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
