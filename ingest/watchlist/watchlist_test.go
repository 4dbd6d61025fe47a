package watchlist

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/securevision/events/internal/vocab"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"abc123", "A8C123"},
		{"ABC-1234", "A8C1234"},
		{" ab c 12 ", "A8C12"},
		{"O0", "00"},
		{"I1l", "11L"},
		{"B8", "88"},
		{"S5s", "555"},
		{"ab.c/1_2", "A8C12"},
		{"münchen-1", "MÜNCHEN1"},
		{"---", ""},
	} {
		if got := Key(tc.in); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc-123", "ABC123"},
		{" O0 I1 ", "O0I1"},
		{"7xyz 123\n", "7XYZ123"},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	dir := t.TempDir()
	wl, bl := filepath.Join(dir, "white.txt"), filepath.Join(dir, "black.txt")
	writeFile(t, wl, "# residents\nABC-1234\n\n  7xyz 123  # the boss\nBOTH1\n")
	writeFile(t, bl, "# wanted\nST0LEN1\nboth1\n")
	w, err := New(Options{Whitelist: wl, Blacklist: bl, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ plate, want string }{
		{"ABC1234", vocab.Whitelist},
		{"abc 1234", vocab.Whitelist},
		{"A8C-I234", vocab.Whitelist}, // OCR confusions B/8, 1/I
		{"7XYZ123", vocab.Whitelist},
		{"STOLEN1", vocab.Blacklist}, // O/0
		{"5T0LENI", vocab.Blacklist}, // S/5, 1/I
		{"BOTH1", vocab.Blacklist},   // on both lists: blacklist wins
		{"NOPE1", ""},
		{"", ""},
		{"#", ""},
		{"residents", ""},
	} {
		if got := w.Match(tc.plate); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.plate, got, tc.want)
		}
	}
	if nw, nb := w.Len(); nw != 3 || nb != 2 {
		t.Errorf("Len = %d, %d; want 3, 2", nw, nb)
	}
}

func TestEmptyOptions(t *testing.T) {
	w, err := New(Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Match("ABC123"); got != "" {
		t.Fatalf("empty watchlist matched: %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	for name, opts := range map[string]Options{
		"missing file":  {Blacklist: filepath.Join(dir, "nope.txt")},
		"directory":     {Whitelist: dir},
		"same file":     {Whitelist: "a", Blacklist: "a"},
		"negative poll": {PollInterval: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			opts.Logger = testLogger(t)
			if _, err := New(opts); err == nil {
				t.Fatal("New succeeded")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestReloadKeepsPreviousOnError(t *testing.T) {
	dir := t.TempDir()
	bl := filepath.Join(dir, "black.txt")
	writeFile(t, bl, "AAA111\n")
	w, err := New(Options{Blacklist: bl, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bl, "BBB222\n")
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if w.Match("AAA111") != "" || w.Match("BBB222") != vocab.Blacklist {
		t.Fatal("explicit Reload did not apply the new file")
	}
	if err := os.Remove(bl); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err == nil {
		t.Fatal("Reload of a removed file succeeded")
	}
	if w.Match("BBB222") != vocab.Blacklist {
		t.Fatal("failed reload dropped the previous list")
	}
}

func TestRunPollsChanges(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "white.txt")
	writeFile(t, wl, "AAA111\n")
	w, err := New(Options{Whitelist: wl, PollInterval: 10 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(ctx) }()

	// Concurrent readers while the list is swapped (run with -race).
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = w.Match("AAA111")
				}
			}
		}()
	}

	// Replace by rename, as editors and deploy tools do; also change size
	// so the change is seen even on filesystems with coarse mtimes.
	tmp := filepath.Join(dir, "white.tmp")
	writeFile(t, tmp, "AAA111\nCCC333\n")
	if err := os.Rename(tmp, wl); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Match("CCC333") != vocab.Whitelist {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	cancel()
	wg.Wait()
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"", "ABC-1234", "a b c", "O0I1B8S5", "münchen", "\xff\xfe", "ǅ", "ı", "ſ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Key(s)
		if Key(k) != k {
			t.Fatalf("Key not idempotent: %q → %q → %q", s, k, Key(k))
		}
		if Normalize(Normalize(s)) != Normalize(s) {
			t.Fatalf("Normalize not idempotent on %q", s)
		}
		if !utf8.ValidString(k) {
			t.Fatalf("Key(%q) = %q is not valid UTF-8", s, k)
		}
		for _, r := range k {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune("OIBSabcdefghijklmnopqrstuvwxyz", r) {
				t.Fatalf("Key(%q) = %q contains %q", s, k, r)
			}
		}
		// Case, separators and confusion classes do not change the key.
		if got := Key(strings.ToLower(s)); got != Key(strings.ToLower(k)) {
			t.Fatalf("Key(lower(%q)) = %q, Key(lower(key)) = %q", s, got, Key(strings.ToLower(k)))
		}
		if got := Key(" -" + s + "- "); got != k {
			t.Fatalf("separators changed key of %q: %q vs %q", s, got, k)
		}
	})
}
