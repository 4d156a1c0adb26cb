package tx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

var errLostRace = errors.New("guard lost a race")

func TestRetryableRerunsTheCallbackWithoutALabel(t *testing.T) {
	e := newEnv(t, fastBackoff)
	ctx := ctxTimeout(t)

	runs := 0
	err := e.runner.Run(ctx, func(ctx context.Context) error {
		runs++ //txcheck:ignore counts the attempts
		if _, err := e.coll.InsertOne(ctx, doc(runs)); err != nil {
			return err
		}
		if runs < 3 {
			return fmt.Errorf("deduct: %w", tx.Retryable(errLostRace))
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, runs)
	assert.EqualValues(t, 1, e.count(t, nil), "the failed attempts were aborted")
	assert.EqualValues(t, 1, e.count(t, doc(3)), "only the last attempt committed")

	retries := e.rec.Of(tx.EventRetry)
	require.Len(t, retries, 2)
	for _, r := range retries {
		assert.ErrorIs(t, r.Err, errLostRace)
		assert.Empty(t, r.Labels, "no server label was forged")
		assert.False(t, r.Infrastructure)
	}
}

func TestRetryableErrorIsReturnedWhenAttemptsRunOut(t *testing.T) {
	e := newEnv(t, fastBackoff, tx.WithMaxAttempts(2))
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, doc(1)); err != nil {
			return err
		}
		return tx.Retryable(errLostRace)
	})
	require.ErrorIs(t, err, tx.ErrRetriesExhausted)
	require.ErrorIs(t, err, errLostRace)
	var le mongo.LabeledError
	if errors.As(err, &le) {
		assert.False(t, le.HasErrorLabel("TransientTransactionError"), "no forged label")
	}
	assert.Zero(t, e.count(t, nil))
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "nil", give: nil, want: false},
		{name: "a plain error", give: errLostRace, want: false},
		{name: "a Retryable error", give: tx.Retryable(errLostRace), want: true},
		{name: "a wrapped Retryable error", give: fmt.Errorf("x: %w", tx.Retryable(errLostRace)), want: true},
		{name: "a server transient error", give: mongo.CommandError{Code: 112, Labels: []string{"TransientTransactionError"}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tx.IsRetryable(tt.give))
		})
	}
	assert.NoError(t, tx.Retryable(nil))
}
