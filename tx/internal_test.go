package tx

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	//lint:ignore SA1019 the driver's own "no transaction" error, which commit takes for "nothing sent"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/session"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

func TestBackoffSchedule(t *testing.T) {
	b := Backoff{Initial: DefaultBackoffInitial, Multiplier: DefaultBackoffMultiplier, Max: DefaultBackoffMax}
	tests := []struct {
		give int
		want time.Duration
	}{
		{give: 1, want: 5 * time.Millisecond},
		{give: 2, want: 7500 * time.Microsecond},
		{give: 3, want: 11250 * time.Microsecond},
		{give: 10, want: 192216796 * time.Nanosecond}, // 5ms × 1.5⁹
		{give: 12, want: 432487792 * time.Nanosecond},
		{give: 13, want: 500 * time.Millisecond}, // capped
		{give: 1000, want: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, b.bound(tt.give), "bound of retry %d", tt.give)
		assert.Zero(t, b.delay(tt.give, 0), "jitter 0")
		assert.Equal(t, b.bound(tt.give)/2, b.delay(tt.give, 0.5), "jitter ½")
	}
}

func TestTransientErrorsAreNotInfrastructureUntilRetriesRunOut(t *testing.T) {
	conflict := mongo.CommandError{Code: 112, Name: "WriteConflict", Labels: []string{labelTransient}}
	assert.False(t, isInfrastructure(conflict), "a write conflict is retried, not a failure")
	assert.False(t, isInfrastructure(fmt.Errorf("debit: %w", conflict)))
	assert.True(t, isInfrastructure(&RetryError{Err: conflict}), "running out of retries is")
	assert.True(t, isInfrastructure(mongo.CommandError{Code: 8000, Name: "AtlasError"}))
}

// A reply with a write concern error means the commit ran on the primary,
// even when no UnknownTransactionCommitResult label came with it (found by
// txchaos: a raw driver.WriteCommandError with ShutdownInProgress).
func TestACommitReplyWithAWriteConcernErrorIsNotAFailure(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "a raw driver write command error", give: driver.WriteCommandError{WriteConcernError: &driver.WriteConcernError{Code: 91, Name: "ShutdownInProgress"}}, want: true},
		{name: "a wrapped one", give: fmt.Errorf("commit: %w", driver.WriteCommandError{WriteConcernError: &driver.WriteConcernError{Code: 91}}), want: true},
		{name: "a write exception", give: mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}, want: true},
		// Any server answer may be the answer to the driver's own resend
		// of a commit that applied (finding
		// tx-commit-driver-resend-hides-applied-send).
		{name: "a plain command error", give: mongo.CommandError{Code: 1, Name: "InternalError"}, want: true},
		{name: "a write command error without one", give: driver.WriteCommandError{}, want: true},
		//lint:ignore SA1019 the driver's own "no transaction" error, which commit takes for "nothing sent"
		{name: "no transaction to commit", give: session.ErrNoTransactStarted, want: false},
		{name: "no server selected", give: topology.ServerSelectionError{Wrapped: errors.New("no server")}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, !sentNothing(tt.give))
		})
	}
}

// poolCleared is shaped as the driver's pool-cleared error: no label, and
// Retryable, as the driver retries it by itself outside a transaction.
type poolCleared struct{}

func (poolCleared) Error() string {
	return "connection pool for 127.0.0.1:1 was cleared because another operation failed"
}
func (poolCleared) Retryable() bool { return true }

var _ driver.RetryablePoolError = poolCleared{}

// A statement that could not check a connection out of a cleared pool was
// never sent: the transaction is run again, as the driver retries it
// outside one (finding tx-pool-cleared-in-transaction-not-retried).
func TestAPoolClearedUnderTheTransactionIsRetryable(t *testing.T) {
	assert.True(t, IsRetryable(poolCleared{}))
	assert.True(t, IsRetryable(fmt.Errorf("read idempotency key: %w", poolCleared{})))
	assert.False(t, isInfrastructure(poolCleared{}), "retried, not a failure")
	assert.True(t, isInfrastructure(&RetryError{Err: poolCleared{}}), "running out of retries is")
}
