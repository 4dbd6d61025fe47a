package bench

import (
	"os"
	"strconv"
	"testing"
	"time"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func TestBuildStore(t *testing.T) {
	n := 20_000
	if s := os.Getenv("BENCH_BUILD_N"); s != "" { // manual rate checks
		n, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	now := time.Now()
	info, err := BuildStore(dir, n, WithProgress(testWriter{t}), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if info.Reused || info.Events != uint64(n) || info.Appended != n || info.LastID != uint64(n) {
		t.Fatalf("first build: %+v", info)
	}
	if d := now.UnixMilli() - info.NewestTs; d < 0 || d > 1000 {
		t.Fatalf("newest ts %d is %d ms before now", info.NewestTs, d)
	}
	t.Logf("built %d events at %.0f events/s", n, info.Rate())
	// Reuse: enough events, fresh enough.
	info, err = BuildStore(dir, n/2, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Reused || info.Appended != 0 || info.Events != uint64(n) {
		t.Fatalf("reuse: %+v", info)
	}
	// Stale: a fresh tail is appended at the rate.
	later := now.Add(time.Hour)
	info, err = BuildStore(dir, n, WithClock(func() time.Time { return later }), WithRate(10))
	if err != nil {
		t.Fatal(err)
	}
	tail := min(600*10, n/10) // ten minutes at 10 events/s, at most a tenth
	if !info.Reused || info.Appended != tail || info.Events != uint64(n+tail) || later.UnixMilli()-info.NewestTs > 1000 {
		t.Fatalf("stale reuse: %+v", info)
	}
}
