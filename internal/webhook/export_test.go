package webhook

import (
	"context"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// SetLookup replaces the creation-time DNS look-up (a DNS answer that
// changes between creation and connection).
func SetLookup(o *Options, fn func(ctx context.Context, host string) ([]netip.Addr, error)) {
	o.lookup = fn
}

// Flush persists the moved cursors now.
func (m *Manager) Flush() error { return m.flush(context.Background()) }

// Sign exposes the signing function to the test that checks it against
// the published library's signer; the delivery tests verify with their
// own implementation instead.
var Sign = sign

// BackoffDelay is one pick of the schedule.
func (m *Manager) BackoffDelay(failures int) int64 { return int64(m.backoff(failures, 0, false)) }

// DecodeCreate and DecodeReplay expose the body decoders to the fuzz and
// table tests.
func DecodeCreate(b []byte) (url string, types, sources []string, listMatch, desc string, after *uint64, errs int) {
	r, e := decodeCreate(b)
	return r.URL, r.Types, r.Sources, r.ListMatch, r.Description, r.After, len(e)
}

func DecodeCreateErrs(b []byte) []string {
	_, e := decodeCreate(b)
	var out []string
	for _, fe := range e {
		out = append(out, fe.Type)
	}
	return out
}

func DecodeReplay(b []byte) (uint64, int) {
	a, e := decodeReplay(b)
	return a, len(e)
}

// CheckAddr is the outbound policy's address check.
func CheckAddr(allowLoopback bool, a netip.Addr) error {
	return policy{allowLoopback: allowLoopback}.checkAddr(a)
}

// DeliveriesCounter is deliveries_total{webhook=id, outcome}.
func (m *Manager) DeliveriesCounter(id, outcome string) prometheus.Counter {
	return m.m.deliveries.WithLabelValues(id, outcome)
}
