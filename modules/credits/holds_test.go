package credits_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/modules/credits"
)

const (
	time10m = 10 * time.Minute
	time1ms = time.Millisecond
)

func TestHoldsCountAgainstTheAvailableBalance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 100)
	require.NoError(t, err)

	h, err := e.svc.Reserve(ctx, "a", 60, time10m, credits.Ref("message", "m-1"))
	require.NoError(t, err)
	assert.Equal(t, credits.HoldOpen, h.Status)
	assert.Equal(t, credits.Balance{Account: "a", Balance: 100, Held: 60, Available: 40}, e.balance(t, "a"))

	_, err = e.svc.Deduct(ctx, "a", 41)
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	_, err = e.svc.Reserve(ctx, "a", 41, time10m)
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	_, err = e.svc.Transfer(ctx, "a", "b", 41)
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	_, err = e.svc.Deduct(ctx, "a", 40)
	require.NoError(t, err)
	assert.Equal(t, credits.Balance{Account: "a", Balance: 60, Held: 60, Available: 0}, e.balance(t, "a"))
}

func TestCaptureSpendsUpToTheHoldAndReleasesTheRest(t *testing.T) {
	tests := []struct {
		name    string
		give    int64
		want    credits.Balance
		wantErr error
	}{
		{name: "captures part", give: 25, want: credits.Balance{Account: "a", Balance: 75, Available: 75}},
		{name: "captures all", give: 60, want: credits.Balance{Account: "a", Balance: 40, Available: 40}},
		{name: "refuses more than held", give: 61, want: credits.Balance{Account: "a", Balance: 100, Held: 60, Available: 40}, wantErr: credits.ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 100)
			require.NoError(t, err)
			h, err := e.svc.Reserve(ctx, "a", 60, time10m, credits.Ref("message", "m-1"))
			require.NoError(t, err)

			en, err := e.svc.Capture(ctx, h.ID, tt.give)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, -tt.give, en.Amount)
				assert.Equal(t, credits.KindCapture, en.Kind)
				assert.Equal(t, h.ID, en.HoldID)
				assert.Equal(t, "m-1", en.RefID, "the capture inherits the hold's reference")
				got, err := e.svc.GetHold(ctx, h.ID)
				require.NoError(t, err)
				assert.Equal(t, credits.HoldCaptured, got.Status)
				assert.Equal(t, tt.give, got.Captured)
				assert.Equal(t, en.ID, got.EntryID)
			}
			assert.Equal(t, tt.want, e.balance(t, "a"))
		})
	}
}

func TestAClosedHoldCannotBeUsedAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 100)
	require.NoError(t, err)
	captured, err := e.svc.Reserve(ctx, "a", 10, time10m)
	require.NoError(t, err)
	_, err = e.svc.Capture(ctx, captured.ID, 10, credits.IdempotencyKey("cap"))
	require.NoError(t, err)
	released, err := e.svc.Reserve(ctx, "a", 10, time10m)
	require.NoError(t, err)
	r, err := e.svc.Release(ctx, released.ID)
	require.NoError(t, err)
	assert.Equal(t, credits.HoldReleased, r.Status)

	t.Run("a repeated keyed capture returns the first entry", func(t *testing.T) {
		_, err := e.svc.Capture(ctx, captured.ID, 10, credits.IdempotencyKey("cap"))
		require.NoError(t, err)
	})
	t.Run("capturing a captured hold fails", func(t *testing.T) {
		_, err := e.svc.Capture(ctx, captured.ID, 10)
		require.ErrorIs(t, err, credits.ErrHoldClosed)
	})
	t.Run("releasing a captured hold fails", func(t *testing.T) {
		_, err := e.svc.Release(ctx, captured.ID)
		require.ErrorIs(t, err, credits.ErrHoldClosed)
	})
	t.Run("capturing a released hold fails", func(t *testing.T) {
		_, err := e.svc.Capture(ctx, released.ID, 1)
		require.ErrorIs(t, err, credits.ErrHoldClosed)
	})
	t.Run("releasing a released hold returns it", func(t *testing.T) {
		again, err := e.svc.Release(ctx, released.ID)
		require.NoError(t, err)
		assert.Equal(t, r, again)
	})
	assert.Equal(t, credits.Balance{Account: "a", Balance: 90, Available: 90}, e.balance(t, "a"))
}

func TestExpiredHoldsAreReleased(t *testing.T) {
	tests := []struct {
		name string
		give func(t *testing.T, e *env, hold credits.Hold)
	}{
		{name: "by a capture, which fails", give: func(t *testing.T, e *env, h credits.Hold) {
			_, err := e.svc.Capture(context.Background(), h.ID, 10)
			require.ErrorIs(t, err, credits.ErrHoldExpired)
			_, err = e.svc.Capture(context.Background(), h.ID, 10)
			require.ErrorIs(t, err, credits.ErrHoldExpired)
		}},
		{name: "by a deduct that needs them", give: func(t *testing.T, e *env, _ credits.Hold) {
			_, err := e.svc.Deduct(context.Background(), "a", 100)
			require.NoError(t, err)
			_, err = e.svc.Add(context.Background(), "a", 100)
			require.NoError(t, err)
		}},
		{name: "by a keyed deduct that needs them", give: func(t *testing.T, e *env, _ credits.Hold) {
			_, err := e.svc.Deduct(context.Background(), "a", 100, credits.IdempotencyKey("d"))
			require.NoError(t, err)
			_, err = e.svc.Add(context.Background(), "a", 100)
			require.NoError(t, err)
		}},
		{name: "by Balance", give: func(t *testing.T, e *env, _ credits.Hold) {
			e.balance(t, "a")
		}},
		{name: "by the sweeper", give: func(t *testing.T, e *env, _ credits.Hold) {
			e.svc.Start()
			defer e.svc.Stop()
			require.Eventually(t, func() bool {
				b, err := e.svc.Balance(context.Background(), "a")
				return err == nil && b.Held == 0
			}, 5*time.Second, 5*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, credits.WithSweepInterval(time.Millisecond))
			ctx := context.Background()
			_, err := e.svc.Add(ctx, "a", 100)
			require.NoError(t, err)
			h, err := e.svc.Reserve(ctx, "a", 60, time.Minute)
			require.NoError(t, err)
			e.clock.Advance(time.Minute)

			tt.give(t, e, h)

			got, err := e.svc.GetHold(ctx, h.ID)
			require.NoError(t, err)
			assert.Equal(t, credits.HoldExpired, got.Status)
			assert.Equal(t, credits.Balance{Account: "a", Balance: 100, Available: 100}, e.balance(t, "a"))
		})
	}
}

func TestSweeperStopsCleanly(t *testing.T) {
	e := newEnv(t, credits.WithSweepInterval(time.Millisecond))
	e.svc.Start()
	e.svc.Start() // a second Start does nothing
	time.Sleep(10 * time.Millisecond)
	e.svc.Stop()
	e.svc.Stop() // nor does a second Stop
	// goleak in TestMain fails the package if the sweeper is still running.
}
