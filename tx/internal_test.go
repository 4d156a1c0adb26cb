package tx

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
