package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A server that cannot take writes now (a failover or a shutdown that
// outlasts the driver's one retry) is a 503 with Retry-After, not a 500
// "bug" (finding app-shutdown-errors-answered-500). The end-to-end shape,
// failCommand twice with these codes, is slow: after such an error the
// driver waits for the server's next heartbeat, up to 10 s, as on MongoDB.
func TestAServerThatCannotTakeWritesNowIsA503(t *testing.T) {
	tests := []struct {
		name string
		give error
	}{
		{name: "InterruptedAtShutdown, retryable", give: mongo.CommandError{Code: 11600, Name: "InterruptedAtShutdown", Labels: []string{"RetryableWriteError"}}},
		{name: "ShutdownInProgress", give: mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}},
		{name: "NotWritablePrimary", give: mongo.CommandError{Code: 10107, Name: "NotWritablePrimary"}},
		{name: "PrimarySteppedDown", give: mongo.CommandError{Code: 189, Name: "PrimarySteppedDown"}},
		{name: "NotPrimaryOrSecondary", give: mongo.CommandError{Code: 13436}},
		{name: "a write error with the retryable label", give: mongo.WriteException{Labels: []string{"RetryableWriteError"}, WriteErrors: []mongo.WriteError{{Code: 11602}}}},
		{name: "wrapped", give: fmt.Errorf("credits: deduct: %w", mongo.CommandError{Code: 11600})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := toProblem(tt.give)
			assert.Equal(t, http.StatusServiceUnavailable, p.Status)
			assert.Equal(t, codeUnavailable, p.Code)
			assert.Equal(t, retryAfterSeconds, p.RetryAfter)
		})
	}
	p := toProblem(mongo.CommandError{Code: 2, Name: "BadValue"})
	assert.Equal(t, http.StatusInternalServerError, p.Status, "other server errors are still ours to look at")
}
