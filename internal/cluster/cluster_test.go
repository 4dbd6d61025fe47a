package cluster_test

import (
	"slices"
	"testing"
	"time"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/storetest"
)

// Two nodes over one stream: each one's writes are readable on it at
// once, and both end with the same records.
func TestTwoNodesConverge(t *testing.T) {
	nc := startNATS(t)
	a := openNode(t, nc, "a")
	b := openNode(t, nc, "b")
	now := time.Now().UnixMilli()
	res, err := a.c.Ingest().Append(bg, []ingest.Event{storetest.Face("cam1", now, "x"), storetest.Plate("cam2", now, "ABC123")})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstID != 1 || res.LastID != 2 {
		t.Fatalf("ids %d..%d", res.FirstID, res.LastID)
	}
	if _, _, err := a.c.View().Event(2); err != nil {
		t.Fatalf("read-your-writes on a: %v", err)
	}
	res2, err := b.c.Ingest().Append(bg, []ingest.Event{storetest.Face("cam1", now, "y")})
	if err != nil {
		t.Fatal(err)
	}
	if res2.FirstID != 3 {
		t.Fatalf("b's id %d", res2.FirstID)
	}
	a.waitApplied(3)
	b.waitApplied(3)
	da, db := a.dump(), b.dump()
	if len(da) != 3 || !slices.Equal(da, db) {
		t.Fatalf("nodes differ:\n%v\n%v", da, db)
	}
}
