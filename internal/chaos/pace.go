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

// checkShare bounds the continuous checks to a fifth of the run's time.
// A check reads the whole ledger and holds it against the whole history,
// so it costs more the longer the run goes on; on a fixed period the checks
// would end up back to back, taking the cores from the workload and the
// server: a run slowed down to a third in two minutes.
const checkShare = 5

// runChecks runs check every period until ctx ends, but a check that took
// d is followed by the next no sooner than checkShare·d after it began:
// once checks get expensive they come less often, and the share of the run
// they take stays the same. (The final check, after the run, still binds
// every operation.)
func runChecks(ctx context.Context, every time.Duration, c clock, check func(context.Context)) {
	next := c.Now().Add(every)
	for c.Sleep(ctx, next.Sub(c.Now())) {
		began := c.Now()
		check(ctx)
		next = began.Add(max(every, checkShare*c.Now().Sub(began)))
	}
}
