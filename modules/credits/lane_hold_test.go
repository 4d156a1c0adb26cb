package credits

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A transaction's turn on an account's lane (hotWriter.hold) is given back
// at release, and the lane goes on to its next caller. The turn was given
// back by handing off the lane that account maps
// to at release, which is not the lane the turn was taken on when that one
// was dropped (idle) between the lookup and the wait, and another lane was
// made since: the release then hands off a lane another caller leads (two
// leaders at once: a write's outcome sent to a channel that already holds
// its lead, and the lane stays busy forever), and the held lane is never
// given back. Found by txchaos (-seed 417 -unknown-commit 5 -write-concern
// 5 -accounts 4 -hot 2 on 8ed5930: every worker stuck in lane.await for
// minutes, one leader blocked sending an outcome in writeBatch; finding
// credits-lane-release-hands-off-another-lane).
//
// Two turns may still overlap now and then (a caller that looked a lane up
// before it was dropped leads it alone, beside the new one: by design, see
// dropLane, it costs combining only): the test asserts progress only.
func TestHoldsOfOneAccountKeepMakingProgress(t *testing.T) {
	w := &hotWriter{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var inside, overlaps atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && ctx.Err() == nil; i++ {
				release, err := w.hold(ctx, "acct")
				if err != nil {
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				inside.Add(-1)
				release()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(15 * time.Second): // a caller may be stuck where no ctx reaches it
	}
	if ctx.Err() != nil {
		t.Fatalf("holds of one account stopped making progress (a lane stayed busy): %v; overlapping holds: %d", ctx.Err(), overlaps.Load())
	}
	t.Logf("overlapping holds: %d", overlaps.Load())
}
