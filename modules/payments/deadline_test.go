package payments_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
)

// The modules' transactional calls keep their caller's deadline, commit
// included: with the commit held up past it, the call says its outcome is
// unknown instead of waiting for the database (it used to return success
// once the held commit ran, 6 s after a 300 ms deadline; finding
// payments-transactional-calls-outlive-deadline). A repeat then learns
// that it applied, exactly once.
func TestTransactionalCallsKeepTheirCallersDeadline(t *testing.T) {
	if testenv.Real() {
		t.Skip("holds the database's commits up")
	}
	const ref = "pi_deadline"
	create := payments.NewPayment{Account: "user-1", AmountMinor: 999, Currency: "EUR", Credits: 10, Provider: "stripe", ProviderRef: ref}
	tests := []struct {
		name   string
		call   func(ctx context.Context, e *env) error
		repeat func(t *testing.T, e *env)
	}{
		{name: "payments.Create", call: func(ctx context.Context, e *env) error {
			_, err := e.payments.Create(ctx, create)
			return err
		}, repeat: func(t *testing.T, e *env) {
			// Applied by the first call or by this one: once.
			if _, err := e.payments.Create(context.Background(), create); err != nil {
				require.ErrorIs(t, err, payments.ErrDuplicateProviderRef)
			}
			n, err := e.db.Collection("payments").CountDocuments(context.Background(), bson.D{{Key: "providerRef", Value: ref}})
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
		}},
		{name: "credits.Transfer", call: func(ctx context.Context, e *env) error {
			_, err := e.credits.Transfer(ctx, "user-0", "user-1", 5, credits.IdempotencyKey("deadline-transfer"))
			return err
		}, repeat: func(t *testing.T, e *env) {
			// Applied by the first call or by this one: once.
			_, err := e.credits.Transfer(context.Background(), "user-0", "user-1", 5, credits.IdempotencyKey("deadline-transfer"))
			require.NoError(t, err)
			b, err := e.credits.Balance(context.Background(), "user-0")
			require.NoError(t, err)
			assert.EqualValues(t, 95, b.Balance)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.credits.Add(context.Background(), "user-0", 100)
			require.NoError(t, err)
			const hold = 3 * time.Second
			testenv.FailCommand(t, e.db.Client(), bson.D{
				{Key: "configureFailPoint", Value: "failCommand"},
				{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
				{Key: "data", Value: bson.D{
					{Key: "failCommands", Value: bson.A{"commitTransaction"}},
					{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(hold / time.Millisecond)},
				}},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = tt.call(ctx, e)
			require.Error(t, err, "the held commit was not waited for")
			assert.True(t, errors.Is(err, payments.ErrOutcomeUnknown) || errors.Is(err, credits.ErrOutcomeUnknown), "%v", err)
			time.Sleep(time.Until(start.Add(hold + 500*time.Millisecond))) // the held commit has run
			tt.repeat(t, e)
		})
	}
}
