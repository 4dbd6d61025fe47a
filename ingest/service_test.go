package ingest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// fixedList answers every plate with one verdict.
type fixedList string

func (f fixedList) Match(string) string { return string(f) }

// plates are n plate_read events without list_match, as NDJSON.
func plates(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"plate_read","ts_ms":%d,"frame_source_id":"cam","payload":{"plate_text":"P%d","confidence":0.5,"region":"US-CA"}}`+"\n", 1704067200000+i, i)
	}
	return b.String()
}

func openService(t *testing.T, o Options) *Service {
	t.Helper()
	l, err := eventlog.Open(eventlog.Options{URL: "memory://"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	o.Log = l
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The lists from Options, then from SetLists, fill list_match; nil
// removes them.
func TestSetLists(t *testing.T) {
	s := openService(t, Options{Lists: fixedList(vocab.Blacklist)})
	ctx := context.Background()
	for _, c := range []struct {
		set  bool
		l    ListMatcher
		want string
	}{
		{false, nil, vocab.Blacklist},
		{true, fixedList(vocab.Whitelist), vocab.Whitelist},
		{true, nil, ""},
	} {
		if c.set {
			s.SetLists(c.l)
		}
		evs, err := Decode(strings.NewReader(plates(2)), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Plate.ListMatch != c.want {
				t.Fatalf("list_match %q, want %q", ev.Plate.ListMatch, c.want)
			}
		}
	}
}

// SetLists may run while appends read the lists (run with -race); each
// batch sees one set of lists throughout.
func TestSetListsWhileAppending(t *testing.T) {
	s := openService(t, Options{})
	ctx := context.Background()
	stop := make(chan struct{})
	setter := make(chan struct{})
	go func() {
		defer close(setter)
		lists := []ListMatcher{fixedList(vocab.Whitelist), fixedList(vocab.Blacklist), nil}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.SetLists(lists[i%len(lists)])
			runtime.Gosched()
		}
	}()
	batch := plates(20)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				evs, err := Decode(strings.NewReader(batch), true)
				if err == nil {
					_, err = s.Append(ctx, evs)
				}
				if err != nil {
					t.Errorf("appender %d: %v", w, err)
					return
				}
				first := evs[0].Plate.ListMatch
				for _, ev := range evs {
					switch m := ev.Plate.ListMatch; {
					case m != "" && m != vocab.Whitelist && m != vocab.Blacklist:
						t.Errorf("list_match %q", m)
						return
					case m != first:
						t.Errorf("one batch saw two lists: %q and %q", first, m)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-setter
}
