package bench

// WSFanoutResult is `wsbench fanout -json` (the figures of its text
// output), read by benchall.
type WSFanoutResult struct {
	Conns               int     `json:"conns"`
	ConnectSeconds      float64 `json:"connect_seconds"`
	ServerClients       int     `json:"server_clients"` // including the warm-up clients
	RSSIdleKiB          int64   `json:"rss_idle_kib"`
	RSSClientsKiB       int64   `json:"rss_clients_kib"`
	RSSPerConnKiB       float64 `json:"rss_per_conn_kib"`
	HeapStackPerConnKiB float64 `json:"heap_stack_per_conn_kib"`
	HeapPerConnKiB      float64 `json:"heap_per_conn_kib"`
	StackPerConnKiB     float64 `json:"stack_per_conn_kib"`
	GoroutinesIdle      int     `json:"goroutines_idle"`
	GoroutinesClients   int     `json:"goroutines_clients"`
	Rate                float64 `json:"rate"`
	DurationSeconds     float64 `json:"duration_seconds"`
	Appended            uint64  `json:"appended"`
	Deliveries          int64   `json:"deliveries"`
	Expected            int64   `json:"expected"`
	DeliveriesPerSec    float64 `json:"deliveries_per_s"`
	OutOfOrder          int64   `json:"out_of_order"`
	ClientsMissingLast  int     `json:"clients_missing_last"`
	LatencySamples      int     `json:"latency_samples"`
	P50ns               int64   `json:"p50_ns"`
	P90ns               int64   `json:"p90_ns"`
	P99ns               int64   `json:"p99_ns"`
	P999ns              int64   `json:"p999_ns"`
	MaxNs               int64   `json:"max_ns"`
	ServerCPUSeconds    float64 `json:"server_cpu_seconds"`
	ClientCPUSeconds    float64 `json:"client_cpu_seconds"`
	RSSAfterKiB         int64   `json:"rss_after_kib"`
	GoroutinesAfter     int     `json:"goroutines_after"`
}

// WSReplayResult is `wsbench replay -json`, read by benchall.
type WSReplayResult struct {
	Events  int             `json:"events"`  // -events
	LastID  uint64          `json:"last_id"` // of the store replayed
	Prefill string          `json:"prefill"` // the server's "last-id fill-time"
	Rounds  []WSReplayRound `json:"rounds"`
}

// WSReplayRound is one replay of the store from after=0.
type WSReplayRound struct {
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_s"`
	OutOfOrder   int64   `json:"out_of_order"`
}

// Delivered reports whether every appended event reached every client in
// order.
func (r *WSFanoutResult) Delivered() bool {
	return r.Deliveries == r.Expected && r.ClientsMissingLast == 0 && r.OutOfOrder == 0 && r.Appended > 0
}
