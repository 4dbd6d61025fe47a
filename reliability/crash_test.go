package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the server once per test binary.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sv-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = BuildBinary(dir)
	})
	if binErr != nil {
		t.Fatalf("build: %v", binErr)
	}
	return binPath
}

// ackedBatch is one acknowledged POST /ingest: its events, in order, got
// ids first..first+len-1.
type ackedBatch struct {
	first  uint64
	events [][]byte
}

// TestCrash is the kill -9 harness (make crash-test): 8 concurrent writers
// post batches of 1, 5 and 50 events; the server is SIGKILLed at a random
// moment; after each cycle the store must verify, hold every acknowledged
// event with its id and content, have unique increasing ids, hold every
// batch whole or not at all, and replay over /stream exactly what is
// stored. SV_CRASH=1 enables it; SV_CRASH_CYCLES overrides 20 cycles.
func TestCrash(t *testing.T) {
	if os.Getenv("SV_CRASH") == "" {
		t.Skip("crash harness: set SV_CRASH=1 (make crash-test)")
	}
	cycles := 20
	if n, err := strconv.Atoi(os.Getenv("SV_CRASH_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	bin := binary(t)
	dir := filepath.Join(t.TempDir(), "events")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t.Logf("seed time %s", time.Now().Format(time.RFC3339Nano))

	var (
		acked      []ackedBatch // every acknowledged batch, all cycles
		ackedCount int
		sentTags   = map[string]int{} // batch tag -> size, every batch ever sent
		wsChecked  bool
		wsMissing  bool
		lastStored [][]byte
		start      = time.Now()
	)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for cycle := 0; cycle < cycles; cycle++ {
		srv, err := StartServer(bin, dir)
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		// The store as the previous cycle left it must replay over /stream
		// exactly as export reads it.
		if cycle > 0 {
			// Export holds Pebble's lock: it read the store before start.
			stored := lastStored
			if len(stored) > 0 {
				var last Stored
				_ = json.Unmarshal(stored[len(stored)-1], &last)
				msgs, found, err := WSReplay(srv.URL, "after=0", last.ID, time.Second, 30*time.Second, nil)
				switch {
				case !found:
					wsMissing = true
				case err != nil:
					srv.Kill()
					t.Fatalf("cycle %d: ws replay: %v", cycle, err)
				default:
					wsChecked = true
					if len(msgs) != len(stored) {
						srv.Kill()
						t.Fatalf("cycle %d: ws replay gave %d messages, store holds %d", cycle, len(msgs), len(stored))
					}
					for i := range msgs {
						if !bytes.Equal(msgs[i], stored[i]) {
							srv.Kill()
							t.Fatalf("cycle %d: ws message %d differs from stored event:\n ws:    %s\n store: %s", cycle, i, msgs[i], stored[i])
						}
					}
				}
			}
		}

		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				sizes := []int{1, 5, 50}
				for n := 0; ctx.Err() == nil; n++ {
					size := sizes[(w+n)%3]
					tag := fmt.Sprintf("c%d-w%d-b%d", cycle, w, n)
					evs := make([][]byte, size)
					var body bytes.Buffer
					body.WriteByte('[')
					for i := range evs {
						evs[i] = EventJSON(i, fmt.Sprintf("cam-%d", w), tag, time.Now().UnixMilli())
						if i > 0 {
							body.WriteByte(',')
						}
						body.Write(evs[i])
					}
					body.WriteByte(']')
					mu.Lock()
					sentTags[tag] = size
					mu.Unlock()
					status, res, raw, err := Ingest(context.Background(), client, srv.URL, "", body.Bytes(), false)
					if err != nil {
						return // the server died under us: unacknowledged
					}
					if status != http.StatusOK || res.Count != size || res.LastID-res.FirstID+1 != uint64(size) {
						t.Errorf("ingest: %d %s", status, raw)
						return
					}
					mu.Lock()
					acked = append(acked, ackedBatch{first: res.FirstID, events: evs})
					ackedCount += size
					mu.Unlock()
					// Pace the writers: the checks after each cycle read the
					// whole store (export, WS replay from 0), so its size sets
					// the run time; in-flight requests at the kill are what
					// the harness is about, and 8 writers keep some in flight.
					time.Sleep(25 * time.Millisecond)
				}
			}(w)
		}
		time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond)
		srv.Kill()
		cancel()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		if err := Verify(bin, dir); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		stored, err := Export(bin, dir)
		if err != nil {
			t.Fatal(err)
		}
		lastStored = stored
		byID := make(map[uint64][]byte, len(stored))
		perTag := map[string]int{}
		var prev uint64
		for _, line := range stored {
			var s Stored
			if err := json.Unmarshal(line, &s); err != nil {
				t.Fatalf("cycle %d: stored line %q: %v", cycle, line, err)
			}
			if s.ID <= prev {
				t.Fatalf("cycle %d: ids not strictly increasing: %d after %d", cycle, s.ID, prev)
			}
			prev = s.ID
			byID[s.ID] = line
			var p struct {
				Plate  string `json:"plate_text"`
				Person string `json:"person_name"`
			}
			_ = json.Unmarshal(s.Payload, &p)
			perTag[p.Plate+p.Person]++
		}
		lost := 0
		for _, b := range acked {
			for i, ev := range b.events {
				id := b.first + uint64(i)
				got, ok := byID[id]
				if !ok {
					lost++
					t.Errorf("cycle %d: acknowledged event id %d missing", cycle, id)
					continue
				}
				if same, err := SameContent(ev, got); err != nil || !same {
					t.Errorf("cycle %d: id %d: stored %s, sent %s (%v)", cycle, id, got, ev, err)
				}
			}
		}
		for tag, n := range perTag {
			if want, ok := sentTags[tag]; !ok || n != want {
				t.Errorf("cycle %d: batch %s stored %d of %d events (batches are atomic)", cycle, tag, n, want)
			}
		}
		t.Logf("cycle %2d: acknowledged %d, stored %d, lost %d (%.1fs)", cycle, ackedCount, len(stored), lost, time.Since(start).Seconds())
		if t.Failed() {
			t.FailNow()
		}
		if cycle == cycles-1 {
			ws := "checked after every cycle"
			switch {
			case wsMissing:
				ws = "NOT CHECKED: /stream answered 404"
			case !wsChecked:
				ws = "not checked (empty store)"
			}
			fmt.Printf("crash harness: %d cycles in %.1fs: acknowledged %d, stored %d, lost %d; ws replay %s\n",
				cycles, time.Since(start).Seconds(), ackedCount, len(stored), lost, ws)
		}
	}
}
