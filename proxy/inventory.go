package proxy

import (
	"context"
	"time"

	"github.com/stranglerkit/strangler/proxy/control"
)

// flushUsage adds what the data plane's traffic inventory counted since
// the last flush to the control store. A flush that fails keeps the
// counts for the next one.
func (p *Proxy) flushUsage(ctx context.Context) error {
	deltas, commit, release := p.dp.UsageDeltas()
	defer release()
	if len(deltas) > 0 {
		if err := p.store.AddUsage(ctx, deltas); err != nil {
			return &control.StoreError{Op: "add the traffic inventory", Err: err}
		}
	}
	commit()
	return nil
}

// flushTimeout bounds one flush, so that a store that hangs holds neither
// the next flush nor an admin request that waits for it for long.
const flushTimeout = 10 * time.Second

// runUsageFlush flushes the inventory every InventoryFlushInterval until
// ctx ends; Run flushes once more when the data plane has stopped.
func (p *Proxy) runUsageFlush(ctx context.Context) {
	wait := time.NewTimer(p.cfg.InventoryFlushInterval)
	defer wait.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-wait.C:
			fctx, cancel := context.WithTimeout(ctx, flushTimeout)
			err := p.flushUsage(fctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				p.log.Warn("traffic inventory not flushed; its counts wait for the next flush", "error", err)
			}
			wait.Reset(p.cfg.InventoryFlushInterval)
		}
	}
}

// finalUsageFlush is the flush when Run ends, bounded so that a store
// that is down does not hold the stop.
func (p *Proxy) finalUsageFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := p.flushUsage(ctx); err != nil {
		p.log.Warn("traffic inventory not flushed at stop; the counts since the last flush are lost", "error", err)
	}
}

// usage flushes this replica's counts and reads the inventory of every
// replica, for the admin API.
func (p *Proxy) usage(ctx context.Context) ([]control.Usage, error) {
	if err := p.flushUsage(ctx); err != nil {
		return nil, err
	}
	rows, err := p.store.Usage(ctx)
	if err != nil {
		return nil, &control.StoreError{Op: "read the traffic inventory", Err: err}
	}
	return rows, nil
}
