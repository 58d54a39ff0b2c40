// Package retry holds the waiting that the parts of Strangler share when
// they retry: a doubling backoff and a sleep that ends with its context.
package retry

import (
	"context"
	"time"
)

// Backoff doubles a delay from Min to Max. The zero value of its state
// starts at Min.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next delay: Min first, then twice the last, up to Max.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(b.cur*2, b.Max)
	}
	return b.cur
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d or the end of ctx, and reports whether ctx is still
// live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
