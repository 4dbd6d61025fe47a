// Command securevision is the SecureVision Events server and its tools.
//
//	securevision [serve]   run the API server (default)
//	securevision verify    check a store offline
//	securevision detect    run the vision pipeline over a file
//	securevision export    write events as NDJSON
//	securevision import    load NDJSON through the ingest path
//
// serve wires the packages together: internal/core opens the store, httpd
// and wsfanout serve it, ingest/vision feeds it, ingest/watchlist fills
// list_match, and metrics holds the Prometheus registry. config.go reads
// the environment (docs/api.md, "Configuration"); docs/api.md, "Command
// line", documents every subcommand.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, os.Environ(), stdout, stderr)
	case "verify":
		return runVerify(args, stdout, stderr)
	case "detect":
		return runDetect(ctx, args, stdout, stderr)
	case "export":
		return runExport(ctx, args, stdout, stderr)
	case "import":
		return runImport(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: securevision [serve|verify|detect|export|import] [flags]")
		return 0
	default:
		fmt.Fprintf(stderr, "securevision: unknown command %q (serve, verify, detect, export, import)\n", cmd)
		return 2
	}
}
