package testbin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeServer stands in for `securevision serve` when TESTBIN_FAKE is set
// (by the script fakeBinary writes): it prints its environment to stderr,
// serves /health on SECUREVISION__API__PORT and exits 0 on SIGTERM, or
// ends at once with TESTBIN_FAKE=exit.
func TestFakeServer(t *testing.T) {
	mode := os.Getenv("TESTBIN_FAKE")
	if mode == "" {
		t.Skip("helper process of TestStart")
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TESTBIN_FAKE=") {
			fmt.Fprintln(os.Stderr, "env", kv)
		}
	}
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "cannot open the store")
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("SECUREVISION__API__PORT"))
	if err != nil {
		os.Exit(4)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() { _ = http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) }()
	<-term
	os.Exit(0)
}

// fakeBinary writes a script that runs this test binary as fakeServer.
func fakeBinary(t *testing.T, mode string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "securevision")
	script := fmt.Sprintf("#!/bin/sh\nTESTBIN_FAKE=%s exec %q -test.run='^TestFakeServer$' -test.count=1\n", mode, self)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStart(t *testing.T) {
	t.Setenv("SECUREVISION__API__AUTH_TOKEN", "parent-token")
	t.Setenv("TESTBIN_PARENT_ONLY", "x")
	t.Setenv("GOMAXPROCS", "3")
	dir := filepath.Join(t.TempDir(), "events")
	s, err := Start(context.Background(), Options{Binary: fakeBinary(t, "serve"), StoreDir: dir,
		Env: []string{"SECUREVISION__LOG_LEVEL=DEBUG"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != fmt.Sprintf("http://127.0.0.1:%d", s.Port) || s.ReadyAfter <= 0 || s.PID() <= 0 || s.Exited() {
		t.Fatalf("server %+v", s)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(s.Logs(), "\n") {
		if kv, ok := strings.CutPrefix(l, "env "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for k, want := range map[string]string{
		"SECUREVISION__API__HOST":              "127.0.0.1",
		"SECUREVISION__API__PORT":              fmt.Sprint(s.Port),
		"SECUREVISION__EVENTS__DB_URL":         "pebble://" + dir,
		"SECUREVISION__EVENTS__RETENTION_DAYS": "0",
		"SECUREVISION__EVENTS__BACKUP_DIR":     filepath.Join(filepath.Dir(dir), "backups"),
		"SECUREVISION__LOG_LEVEL":              "DEBUG",
		"PATH":                                 os.Getenv("PATH"),
		"GOMAXPROCS":                           "3",
	} {
		if env[k] != want {
			t.Errorf("server's %s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"SECUREVISION__API__AUTH_TOKEN", "TESTBIN_PARENT_ONLY"} {
		if v, ok := env[k]; ok {
			t.Errorf("the caller's %s=%q reached the server", k, v)
		}
	}
	if want := strings.Join(s.Settings, " ") + " " + s.cmd.Path + " serve"; s.Command != want || len(s.Settings) != 6 {
		t.Errorf("command %q", s.Command)
	}
}

func TestStartFails(t *testing.T) {
	_, err := Start(context.Background(), Options{Binary: fakeBinary(t, "exit"), StoreDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "ended before /health") || !strings.Contains(err.Error(), "cannot open the store") {
		t.Fatalf("error %v, want the exit and the log", err)
	}
}

func TestKillThenStop(t *testing.T) {
	s, err := Start(context.Background(), Options{Binary: fakeBinary(t, "serve"), StoreDir: t.TempDir(), Ready: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if !s.Exited() {
		t.Fatal("not exited after Kill")
	}
	if err := s.Stop(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("stop after kill: %v", err)
	}
}
