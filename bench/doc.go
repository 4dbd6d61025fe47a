// Package bench holds the whole-system workloads of SecureVision Events and
// the pieces the benchmark driver (cmd/benchall) is made of:
//
//   - Generator makes realistic detection events (faces and plates from
//     about twenty cameras) deterministically from a seed, as ingest.Events
//     or as the JSON bodies POST /ingest accepts.
//   - BuildStore fills (or reuses) an on-disk store through the real append
//     path (ingest.Service of a store opened with internal/core, which is
//     the server's wiring of eventlog, projections and ingest).
//   - Server runs the real securevision binary (or, as a fallback, core.Open
//     and the HTTP API in-process, without /stream) on a loopback port.
//   - Runner drives HTTP load: wrk when installed (its --latency
//     percentiles), else a bounded closed-loop Go load generator.
//   - ParseGoBench reads `go test -bench` output; WSFanoutResult and
//     WSReplayResult read bench/wsbench's -json output; Report renders
//     BENCHMARKS.md.
//
// It depends on the service through internal/core (stores are opened as
// the server opens them), ingest (events) and httpd (the in-process
// server), and on the go tool and wrk as programs. Nothing in the service
// depends on it.
//
// The package has no mutable package-level state: every function takes what
// it needs, so several runs may share a process.
package bench
