package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// SecureDelete removes erased events from the stream (an erasure on
// request; see httpd's erasure routes): each id's message is deleted and
// overwritten on every replica (JetStream's secure delete), so a node
// built from the stream later never sees it. An id that is not in the
// stream (trimmed, or deleted by an earlier try) is not an error.
func (n *Node) SecureDelete(ctx context.Context, ids []uint64) error {
	for _, id := range ids {
		dctx, cancel := context.WithTimeout(ctx, n.o.PublishTimeout)
		err := n.stream.SecureDeleteMsg(dctx, id)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("cluster: secure delete of %d: %w", id, n.unavailable(ctx, err))
		}
	}
	return nil
}

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
