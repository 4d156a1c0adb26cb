package credits_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// A service built on client c2, called inside a transaction of client c1,
// cannot join it. It refuses with tx.ErrOtherClient and applies nothing:
// a transaction of its own would commit apart, and the caller, told its
// transaction failed, would find the money moved (finding
// tx-cross-client-nesting-runs-apart).
func TestAServiceOfAnotherClientInsideATransactionAppliesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Add(ctx, "a", 100)
	require.NoError(t, err)
	_, err = e.svc.Add(ctx, "b", 100)
	require.NoError(t, err)
	other := testenv.Connect(t, testenv.URI(t))
	e2 := newEnvOn(t, other.Database(e.db.Name()), e.prefix)

	errOuter := errors.New("the caller's transaction fails")
	err = e.runner.Run(ctx, func(ctx context.Context) error {
		_, err := e2.svc.Add(ctx, "a", 5)
		require.ErrorIs(t, err, tx.ErrOtherClient, "Add")
		_, err = e2.svc.Deduct(ctx, "a", 5)
		require.ErrorIs(t, err, tx.ErrOtherClient, "Deduct")
		_, err = e2.svc.Transfer(ctx, "a", "b", 5)
		require.ErrorIs(t, err, tx.ErrOtherClient, "Transfer")
		return errOuter
	})
	require.ErrorIs(t, err, errOuter)
	require.EqualValues(t, 100, e.balance(t, "a").Balance)
	require.EqualValues(t, 100, e.balance(t, "b").Balance)
}
