package credits_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/modules/credits"
)

// A single-account write to an account that a transaction holds (one the
// application abandoned, say, which the server keeps until its lifetime
// limit) returns soon after its caller's deadline, saying it did not
// apply or that its outcome is unknown; it does not wait for the holder
// and then report success long after the caller gave up.
func TestAWriteToAHeldAccountReturnsSoonAfterItsDeadline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "held", 100)
	require.NoError(t, err)

	sess, err := e.db.Client().StartSession()
	require.NoError(t, err)
	require.NoError(t, sess.StartTransaction())
	_, err = e.svc.Add(mongo.NewSessionContext(ctx, sess), "held", 1)
	require.NoError(t, err)
	// The holder ends long after the callers' deadlines, as the server's
	// lifetime limit would end it.
	var released atomic.Bool
	holder := time.AfterFunc(5*time.Second, func() {
		released.Store(true)
		_ = sess.AbortTransaction(ctx)
		sess.EndSession(ctx)
	})
	t.Cleanup(func() {
		if holder.Stop() {
			released.Store(true)
			_ = sess.AbortTransaction(ctx)
			sess.EndSession(ctx)
		}
	})

	unknown := int64(0)
	for _, key := range []string{"", "deadline-key"} {
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		var opts []credits.OpOption
		if key != "" {
			opts = append(opts, credits.IdempotencyKey(key))
		}
		_, err := e.svc.Deduct(dctx, "held", 10, opts...)
		cancel()
		require.False(t, released.Load(), "the deduct (key %q) returned only once the holder ended", key)
		require.Error(t, err, "key %q", key)
		assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, credits.ErrOutcomeUnknown), "key %q: %v", key, err)
		if errors.Is(err, credits.ErrOutcomeUnknown) {
			unknown++
		}
	}

	// Once the holder is gone, the ledger shows what the callers were told:
	// nothing applied (a deadline error), or either way (unknown).
	require.True(t, holder.Stop())
	released.Store(true)
	require.NoError(t, sess.AbortTransaction(ctx))
	sess.EndSession(ctx)
	b := e.balance(t, "held").Balance
	assert.True(t, b <= 100 && b >= 100-10*unknown && (100-b)%10 == 0, "balance %d after %d unknown deducts", b, unknown)
}
