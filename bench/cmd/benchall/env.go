package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/securevision/events/bench"
)

// env is what sections share: the flags, the load runner, and the things
// built once per run (the server binary, the query store).
type env struct {
	cfg      config
	ctx      context.Context
	progress io.Writer
	runner   bench.Runner

	binTried bool
	binary   string
	buildCmd string
	binErr   error

	storeTried bool
	store      bench.BuildInfo
	storeErr   error

	servers int // numbers server logs
}

func (e *env) logf(format string, args ...any) { fmt.Fprintf(e.progress, format+"\n", args...) }

// serverBinary builds the securevision binary once. With -server inproc,
// or when the build fails (other packages mid-edit), it returns "" and
// servers run in-process; the caller notes that.
func (e *env) serverBinary() (bin, note string) {
	if e.cfg.server == "inproc" {
		return "", ""
	}
	if !e.binTried {
		e.binTried = true
		out := filepath.Join(e.cfg.workDir, "securevision")
		e.logf("building the server: go build ./cmd/securevision")
		e.buildCmd, e.binErr = bench.BuildBinary(e.ctx, e.cfg.moduleDir, out)
		if e.binErr == nil {
			e.binary = out
		}
	}
	if e.binErr != nil {
		return "", fmt.Sprintf("**The server binary did not build, so this section served in-process** (less honest: load generator and server share the CPU differently): %v", oneLine(e.binErr.Error()))
	}
	return e.binary, ""
}

// startServer starts a server over dir; commands gets the build and start
// commands, notes any fallback.
func (e *env) startServer(dir string, s *bench.Section, env ...string) (*bench.Server, error) {
	bin, note := e.serverBinary()
	if note != "" && !contains(s.Notes, note) {
		s.Notes = append(s.Notes, note)
	}
	if bin != "" && !contains(s.Commands, e.buildCmd) {
		s.Commands = append(s.Commands, e.buildCmd)
	}
	e.servers++
	logPath := filepath.Join(e.cfg.workDir, fmt.Sprintf("server-%d.log", e.servers))
	srv, err := bench.StartServer(e.ctx, bench.ServerOptions{Binary: bin, StoreDir: dir, LogPath: logPath, Env: env,
		SourceKeysOnly: slices.Contains(env, sourceKeysEnv)})
	if err != nil {
		return nil, fmt.Errorf("start server (log %s): %w", logPath, err)
	}
	if !contains(s.Commands, srv.Command) {
		s.Commands = append(s.Commands, srv.Command)
	}
	e.logf("server up at %s after %s", srv.URL, srv.ReadyAfter.Round(time.Millisecond))
	return srv, nil
}

func (e *env) stopServer(srv *bench.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return srv.Stop(ctx)
}

// queryStore builds or reuses the query store once per run.
func (e *env) queryStore() (bench.BuildInfo, error) {
	if !e.storeTried {
		e.storeTried = true
		e.logf("query store: %d events in %s", e.cfg.events, e.cfg.dataDir)
		e.store, e.storeErr = bench.BuildStore(e.cfg.dataDir, e.cfg.events, bench.WithProgress(e.progress))
	}
	return e.store, e.storeErr
}

// freshStore returns a new empty store directory in the scratch area.
func (e *env) freshStore(name string) (string, error) {
	return os.MkdirTemp(e.cfg.workDir, "store-"+name+"-")
}

func (e *env) cleanup() {}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
