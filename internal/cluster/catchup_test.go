package cluster_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/internal/wstest"
)

// A node that was down while the others took writes catches up when it
// comes back; a new node with an empty store builds its views from the
// stream; all three end identical and verify.
func TestCatchUp(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	b := openNode(t, nc, "b")
	ts := time.Now().UnixMilli()
	post := func(name string, n int) ingestAnswer {
		t.Helper()
		code, body, err := a.post(faces(name, n, ts), "")
		if err != nil || code != 200 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
		var ans ingestAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	post("before", 300)
	b.waitApplied(300)
	b.close()
	var last ingestAnswer
	for i := 0; i < 10; i++ {
		last = post(fmt.Sprintf("while-down-%d", i), 200)
	}
	b.open()
	b.waitApplied(last.LastID)
	c := openNode(t, nc, "c")
	c.waitApplied(last.LastID)
	da := a.dump()
	if len(da) != 2300 {
		t.Fatalf("a holds %d records", len(da))
	}
	for _, n := range []*node{b, c} {
		if !slices.Equal(da, n.dump()) {
			t.Fatalf("%s differs from a", n.name)
		}
		n.verify()
	}
	a.verify()
	code, health := a.get("/health")
	if code != 200 || !strings.Contains(string(health), fmt.Sprintf(`"cluster":{"stream":"SECUREVISION_EVENTS","last_id":%d,"applied_id":%d,"lag":0,"connected":true}`, last.LastID, last.LastID)) {
		t.Fatalf("/health: %d %s", code, health)
	}
}

// /stream?after=0 on a node that did not take the writes replays every
// event in id order, then continues live with events written on the
// other node.
func TestStreamReplayOnFollower(t *testing.T) {
	nc := startNATS(t)
	a := openAPI(t, nc, "a")
	b := openAPI(t, nc, "b")
	ts := time.Now().UnixMilli()
	const batches, per = 5, 100
	for i := 0; i < batches; i++ {
		if code, body, err := a.post(faces(fmt.Sprintf("r%d", i), per, ts), ""); err != nil || code != 200 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
	}
	b.waitApplied(batches * per)
	ws, _, err := wstest.Dial(b.srv.URL+"/stream?after=0", wstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func(n int, from uint64) {
		t.Helper()
		for i := 0; i < n; i++ {
			msg, err := ws.ReadMessage(waitFor)
			if err != nil {
				t.Fatalf("after %d messages: %v", i, err)
			}
			var ev struct {
				ID uint64 `json:"id"`
			}
			if err := json.Unmarshal(msg, &ev); err != nil || ev.ID != from+uint64(i) {
				t.Fatalf("message %d: %s, want id %d", i, msg, from+uint64(i))
			}
		}
	}
	read(batches*per, 1)
	if code, body, err := a.post(faces("live", 10, ts), ""); err != nil || code != 200 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	read(10, batches*per+1)
}
