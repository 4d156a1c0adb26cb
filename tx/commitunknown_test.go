package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/tx"
)

func TestACommitWhoseOutcomeStaysUnknownSaysSo(t *testing.T) {
	tests := []struct {
		name string
		give bson.D
	}{
		{
			name: "UnknownTransactionCommitResult on every try",
			give: failData("commitTransaction", codeWriteConcernFailed, "UnknownTransactionCommitResult"),
		},
		{
			name: "the connection closes on every try",
			give: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}},
		},
		{
			name: "MaxTimeMSExpired, which is not retried",
			give: failData("commitTransaction", codeMaxTimeMSExpired),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fastBackoff)
			e.failCommand(t, -1, tt.give)
			hooked := false
			err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				tx.AfterCommit(ctx, func(context.Context) { hooked = true })
				return insertAndUpdate(e.coll, 1)(ctx)
			}, tx.WithMaxAttempts(3))
			require.ErrorIs(t, err, tx.ErrCommitUnknown)
			assert.False(t, hooked, "no after-commit hook for an unknown outcome")
		})
	}
}

// Only TransientTransactionError proves that a commit applied nothing: the
// transaction is then over on the server, and is not unknown.
func TestADefiniteCommitFailureIsNotUnknown(t *testing.T) {
	e := newEnv(t, fastBackoff)
	e.failCommand(t, -1, failData("commitTransaction", codeNoSuchTransaction, "TransientTransactionError"))
	err := e.runner.Run(ctxTimeout(t), insertAndUpdate(e.coll, 1), tx.WithMaxAttempts(1))
	require.Error(t, err)
	assert.NotErrorIs(t, err, tx.ErrCommitUnknown)
	assert.Zero(t, e.count(t, doc(1)))
}

// Any other answer to a commit, an unlabelled InternalError included, may
// be the answer to the driver's own resend of a commit that applied
// (finding tx-commit-driver-resend-hides-applied-send): the runner sends
// the commit again, which commits it here, where the failed send applied
// nothing. Until this finding, the first send's unlabelled error was
// reported as a plain failure.
func TestAnUnlabelledCommitFailureIsSentAgain(t *testing.T) {
	e := newEnv(t, fastBackoff)
	e.failCommand(t, 1, failData("commitTransaction", codeInternalError))
	require.NoError(t, e.runner.Run(ctxTimeout(t), insertAndUpdate(e.coll, 1)))
	assert.Equal(t, int64(1), e.count(t, doc(1)), "committed by the resend")
}
