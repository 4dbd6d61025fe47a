package main

import "github.com/securevision/events/bench"

// runWS is the WebSocket fan-out section (benchall -include ws), to be
// written by the wsfanout owner. Suggested content, on the query store
// (e.queryStore) and a server from e.startServer:
//   - N clients on /stream from cursor 0: replay rate (events/s per client
//     and in total) until they reach the live tail;
//   - live fan-out: 1000 clients while POST /ingest appends at a fixed
//     rate; p50/p99 from commit to client receipt; drops by reason;
//   - targets with bench.Section.Check, commands in Section.Commands.
func runWS(e *env, s *bench.Section) error {
	s.Skipped = "placeholder: the WebSocket fan-out benchmark is not written yet (bench/cmd/benchall/ws.go)"
	return nil
}
