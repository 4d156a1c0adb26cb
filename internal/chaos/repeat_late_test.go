package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowFirst fails its first operation when the op's context ends, and
// answers every later one at once.
type slowFirst struct{ n int }

func (b *slowFirst) Do(ctx context.Context, op *Op) error {
	b.n++
	if b.n == 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (b *slowFirst) Balance(context.Context, string) (int64, int64, int64, error) {
	return 0, 0, 0, errors.New("not used")
}

// A repeat of an operation whose context ended (txchaos repeats
// failed and unknown keyed operations with their key) runs on a context
// of its own. If it returns at once, it did not outlive any context: the
// bound (txchaos -late) must not report it. It once inherited the first
// run's CtxEnd, so a fast repeat run seconds later was reported (found by
// the issue-13 attack).
func TestAFastRepeatDoesNotOutliveTheFirstRunsContext(t *testing.T) {
	h := NewHistory()
	k := &Worker{W: &Workload{Accounts: []string{"a"}, Hot: []string{"a"}, CancelRate: 1}, ID: 1,
		Rng: rand.New(rand.NewPCG(1, 2)), B: &slowFirst{}, H: h}
	op := k.newOp(OpAdd)
	op.Account, op.Amount, op.Key = "a", 5, "k-1"
	require.Equal(t, Failed, k.do(op), "the first run fails when its context ends")
	require.NotEmpty(t, k.again, "remembered for a repeat")

	time.Sleep(200 * time.Millisecond) // the repeat comes later
	k.W.CancelRate = 0                 // the repeat's context never ends
	k.repeat()

	ops := h.Ops(time.Time{})
	require.Len(t, ops, 2)
	assert.True(t, ops[1].CtxEnd.IsZero(), "the repeat's context never ended: CtxEnd %v (the first run's)", ops[1].CtxEnd)
	assert.Empty(t, late(ops, 100*time.Millisecond), "a repeat that returned at once is not late")
}
