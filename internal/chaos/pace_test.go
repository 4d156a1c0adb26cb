package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakeClock is a clock whose time moves only when the code under test
// sleeps or a fake check takes time; its ctx ends at end.
type fakeClock struct {
	now, end time.Time
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) bool {
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return c.now.Before(c.end)
}

// TestContinuousChecksTakeABoundedShareOfTheRun runs the continuous
// checks for ten (fake) minutes, each check costing more than the one
// before, as a check that reads the whole ledger and holds it against the
// whole history does while the run goes on. The share of the run's time
// spent checking must not grow with the run: it is the time the workload
// and the server lose to the checker (finding
// chaos-throughput-decay-not-scans: with a fixed period, checks ran back
// to back from a minute in, and the workload slowed down to a third).
func TestContinuousChecksTakeABoundedShareOfTheRun(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := &fakeClock{now: start, end: start.Add(10 * time.Minute)}
	const every = 2 * time.Second
	// Seed 411 with the finding's flags: a check took 0.3 s at 10 s and
	// 2.2 s at 110 s, some 20 ms more per second of run.
	cost := func(at time.Duration) time.Duration { return 300*time.Millisecond + at/50 }

	busy := map[int]time.Duration{} // checking time per minute of the run
	checks := map[int]int{}
	var first []time.Duration // when the checks of the first 10 s started
	runChecks(context.Background(), every, c, func(context.Context) {
		at := c.now.Sub(start)
		d := cost(at)
		c.now = c.now.Add(d)
		if at < 10*time.Second {
			first = append(first, at)
		}
		busy[int(at/time.Minute)] += d
		checks[int(at/time.Minute)]++
	})

	share := func(minute int) float64 { return busy[minute].Seconds() / 60 }
	t.Logf("share of the 1st minute spent checking %.2f, of the 10th %.2f; checks %d, then %d; the first at %v",
		share(0), share(9), checks[0], checks[9], first)
	assert.Len(t, first, 4, "while checks are cheap they run every period: %v", first)
	assert.LessOrEqual(t, share(9), 1/float64(checkShare)+0.05,
		"the 10th minute must not be spent checking more than the run's share")
	assert.LessOrEqual(t, share(9)/share(0), 1.5, "the share spent checking grows with the run")
	assert.Positive(t, checks[9], "checks go on to the end")
}
