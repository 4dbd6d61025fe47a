// Package bench holds the whole-system workloads of SecureVision Events and
// the pieces the benchmark driver (cmd/benchall) is made of:
//
//   - Generator makes realistic detection events (faces and plates from
//     about twenty cameras) deterministically from a seed, as ingest.Events
//     or as the JSON bodies POST /ingest accepts.
//   - BuildStore fills (or reuses) an on-disk store through the real append
//     path (eventlog + projections + ingest.Service, wired as the server
//     wires them).
//   - Server runs the real securevision binary (or, as a fallback, the same
//     wiring in-process) on a loopback port.
//   - Runner drives HTTP load: wrk when installed (its --latency
//     percentiles), else a bounded closed-loop Go load generator.
//   - ParseGoBench reads `go test -bench` output; Report renders
//     BENCHMARKS.md.
//
// The package has no mutable package-level state: every function takes what
// it needs, so several runs may share a process.
package bench
