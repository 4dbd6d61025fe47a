package projections

import (
	"context"
	"time"
)

// RetentionOptions configure RunRetention.
type RetentionOptions struct {
	// Days is the retention period; 0 keeps events forever (the loop
	// returns at once).
	Days int
	// Interval between cleanups; must be > 0.
	Interval time.Duration
}

// maxRetentionBackoff caps the wait after failed cleanups: a broken store
// is retried, but not in a tight loop.
const maxRetentionBackoff = 10 * time.Minute

// RunRetention runs Cleanup every Interval until ctx is done, backing off
// exponentially after failures.
func (v *View) RunRetention(ctx context.Context, o RetentionOptions) {
	if o.Days <= 0 || o.Interval <= 0 {
		return
	}
	wait := o.Interval
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		cutoff := v.now().Add(-time.Duration(o.Days) * 24 * time.Hour).UnixMilli()
		n, err := v.Cleanup(ctx, cutoff)
		if err != nil {
			if wait >= o.Interval {
				wait = time.Second
			} else {
				wait = min(wait*2, maxRetentionBackoff, o.Interval)
			}
			v.logger.Error("retention cleanup failed", "err", err, "retry_in", wait.String())
			continue
		}
		wait = o.Interval
		if n > 0 {
			v.logger.Info("retention cleanup", "deleted", n, "retention_days", o.Days)
		}
	}
}
