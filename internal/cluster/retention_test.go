package cluster_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securevision/events/internal/cluster"
)

// A cleanup run on one node deletes the same events on every node, the
// expired prefix and late (back-filled) expired events beyond it; the
// stream is trimmed; a node built from the trimmed stream afterwards
// holds the same retained set.
func TestRetentionConverges(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	b := openAPI(t, nc, "b")
	now := time.Now()
	old := now.Add(-40 * 24 * time.Hour).UnixMilli()
	fresh := now.UnixMilli()
	post := func(name string, n int, ts int64) ingestAnswer {
		t.Helper()
		code, body, err := b.post(faces(name, n, ts), "")
		if err != nil || code != 200 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
		var ans ingestAnswer
		_ = json.Unmarshal(body, &ans)
		return ans
	}
	post("old", 1000, old) // ids 1..1500: the expired prefix
	post("old2", 500, old)
	post("fresh", 500, fresh)    // 1501..2000
	late := post("late", 7, old) // 2001..2007: back-filled, expired
	post("fresh2", 3, fresh)     // 2008..2010
	a.waitApplied(late.LastID + 3)

	code, body := a.get("/events?limit=1") // reads work before too
	if code != 200 {
		t.Fatal(code, string(body))
	}
	resp, err := httpClient.Post(a.srv.URL+"/cleanup", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Deleted int `json:"deleted"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out.Deleted != 1507 {
		t.Fatalf("cleanup: %d deleted %d, want 1507", resp.StatusCode, out.Deleted)
	}
	marker := late.LastID + 4 // the retention marker's sequence
	b.waitApplied(marker)
	da, db := a.dump(), b.dump()
	if len(da) != 503 || !slices.Equal(da, db) {
		t.Fatalf("after cleanup a holds %d records, b %d (equal %v)", len(da), len(db), slices.Equal(da, db))
	}
	for _, n := range []*node{a.node, b.node} {
		if st := n.c.Log().State(); st.First != 1501 {
			t.Fatalf("%s low-water id %d, want 1501", n.name, st.First)
		}
		n.verify()
	}

	// The stream: prefix purged, late events deleted.
	conn, err := nats.Connect(nc.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := jetstream.New(conn)
	s, err := js.Stream(context.Background(), cluster.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != 1501 || info.State.Msgs != 503+1 {
		t.Fatalf("stream after trim: first %d, %d messages; want 1501 and %d (503 events and the marker)", info.State.FirstSeq, info.State.Msgs, 504)
	}
	for id := late.FirstID; id <= late.LastID; id++ {
		if _, err := s.GetMsg(context.Background(), id); err == nil {
			t.Fatalf("late event %d still in the stream", id)
		}
	}

	c := openNode(t, nc, "c")
	c.waitApplied(marker)
	if dc := c.dump(); !slices.Equal(da, dc) {
		t.Fatalf("a node built after the trim holds %d records, a %d", len(dc), len(da))
	}
	c.verify()

	// A second cleanup deletes nothing anywhere.
	n, err := b.c.Cluster().Cleanup(context.Background(), now.Add(-30*24*time.Hour).UnixMilli())
	if err != nil || n != 0 {
		t.Fatalf("second cleanup: %d %v", n, err)
	}
}
