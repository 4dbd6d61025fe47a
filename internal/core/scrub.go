package core

import (
	"context"
	"log/slog"
	"sync"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// scrubber, in cluster mode, scrubs this node's store after it applied an
// erasure event: the erased records are deleted when the event is
// indexed, on every node, and a scrub (eventlog.Log.Scrub) takes their
// bytes out of the store's files. The node that takes the erasure request
// scrubs before it answers; the others do it here, in the background. The
// commit bus only signals it, and a burst of erasures costs one scrub
// after the last.
type scrubber struct {
	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startScrubber(c *Core, logger *slog.Logger) *scrubber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scrubber{kick: make(chan struct{}, 1), cancel: cancel}
	c.Subscribe(func(b eventlog.Batch) {
		for i := range b.Entries {
			if b.Entries[i].Type == vocab.ErasureCode {
				select {
				case s.kick <- struct{}{}:
				default:
				}
				return
			}
		}
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
				if err := c.log.Scrub(ctx); err != nil && ctx.Err() == nil && logger != nil {
					logger.Error("scrub after an erasure", "err", err)
				}
			}
		}
	}()
	return s
}

// stop ends the scrubber (an interrupted scrub is redone by the next
// erasure; the deleted records are deleted already).
func (s *scrubber) stop() {
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}
