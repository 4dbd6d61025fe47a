package wsfanout

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/securevision/events/internal/vocab"
)

// TestParamsRepeatedTakeLast: like GET /events (and FastAPI), a repeated
// scalar parameter counts by its last value.
func TestParamsRepeatedTakeLast(t *testing.T) {
	r := httptest.NewRequest("GET", "/stream?after=1&after=7&type=face_match&type=plate_read&source=a&source=cam_b", nil)
	p, errs := parseParams(r)
	if len(errs) > 0 {
		t.Fatalf("errors: %+v", errs)
	}
	if p.after != 7 || !p.hasAfter || p.f.types != 1<<vocab.PlateReadCode || p.f.source != "cam_b" || !p.f.hasSource {
		t.Fatalf("params %+v", p)
	}
	r = httptest.NewRequest("GET", "/stream?source="+strings.Repeat("x", vocab.MaxSourceLen+1), nil)
	if _, errs := parseParams(r); len(errs) != 1 || errs[0].Loc[1] != "source" {
		t.Fatalf("%d-character source: errors %+v, want one on source", vocab.MaxSourceLen+1, errs)
	}
}
