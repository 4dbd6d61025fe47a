package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/securevision/events/projections"
)

// Events is the projections as the HTTP API uses them in cluster mode:
// queries from the local views, and a cleanup that goes through the
// stream (Node.Cleanup) so that every node deletes the same events.
type Events struct {
	*projections.View
	Node *Node
}

// Cleanup runs a cluster-wide cleanup (see Node.Cleanup).
func (e Events) Cleanup(ctx context.Context, cutoffMs int64) (int, error) {
	return e.Node.Cleanup(ctx, cutoffMs)
}

// ErrErasureUnsupported: erasure deletes from one node's store, which in
// cluster mode would leave the data in the stream and on every other
// node while answering that it is gone.
var ErrErasureUnsupported = errors.New("cluster: erasure (DELETE /people, DELETE /history/plates) is not supported in cluster mode yet: it would delete on this node only, not in the stream or on the other nodes")

// NoErasure is the eraser of cluster mode: it refuses.
type NoErasure struct{}

// ErasePerson refuses (ErrErasureUnsupported).
func (NoErasure) ErasePerson(context.Context, string) (int, error) { return 0, ErrErasureUnsupported }

// ErasePlate refuses (ErrErasureUnsupported).
func (NoErasure) ErasePlate(context.Context, string) (int, error) { return 0, ErrErasureUnsupported }

// maxRetentionBackoff caps the wait after failed cleanups.
const maxRetentionBackoff = 10 * time.Minute

// RunRetention runs a cluster-wide Cleanup every interval until ctx is
// done, with cutoff now - days, backing off after failures (as
// projections.View.RunRetention does on one node). Every node may run
// it: cleanups at the same cutoff are idempotent.
func (n *Node) RunRetention(ctx context.Context, days int, interval time.Duration) {
	if days <= 0 || interval <= 0 {
		return
	}
	wait := interval
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.stop:
			t.Stop()
			return
		case <-t.C:
		}
		cutoff := n.o.Now().Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
		deleted, err := n.Cleanup(ctx, cutoff)
		if err != nil {
			if wait >= interval {
				wait = time.Second
			} else {
				wait = min(wait*2, maxRetentionBackoff, interval)
			}
			n.o.Logger.Error("retention cleanup failed", "err", err, "retry_in", wait.String())
			continue
		}
		wait = interval
		if deleted > 0 {
			n.o.Logger.Info("retention cleanup", "deleted", deleted, "retention_days", days)
		}
	}
}
