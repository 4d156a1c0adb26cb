package chaos

import (
	"context"
	"time"
)

// clock is the time the continuous checks are paced by: [wallClock], or
// a fake one in tests.
type clock interface {
	Now() time.Time
	// Sleep waits d (not at all if d ≤ 0) and reports whether ctx is
	// still alive.
	Sleep(ctx context.Context, d time.Duration) bool
}

// wallClock is the real time.
type wallClock struct{}

var _ clock = wallClock{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runChecks runs check every period until ctx ends. A check that
// outlasts the period is followed at once by the next, as with a
// time.Ticker, which drops the ticks it missed.
func runChecks(ctx context.Context, every time.Duration, c clock, check func(context.Context)) {
	next := c.Now().Add(every)
	for c.Sleep(ctx, next.Sub(c.Now())) {
		check(ctx)
		next = next.Add(every)
		if now := c.Now(); next.Before(now) {
			next = now
		}
	}
}
