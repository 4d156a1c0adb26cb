package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// docs/app.md (status table): "503 … `account_contended`: the
// account is too busy, nothing was written. All carry `Retry-After`."
// What a client gets for each 503 the handlers can return, as written by
// the API's own error path.
func TestEvery503CarriesRetryAfter(t *testing.T) {
	a := &api{log: zap.NewNop()}
	for _, err := range []error{
		fmt.Errorf("credits: deduct 5 from \"alice\": %w", credits.ErrContended),
		fmt.Errorf("credits: %w", credits.ErrOutcomeUnknown),
		fmt.Errorf("tx: %w", tx.ErrCommitUnknown),
		fmt.Errorf("tx: %w", tx.ErrRetriesExhausted),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.handle(func(http.ResponseWriter, *http.Request) error { return err }).
				ServeHTTP(rec, httptest.NewRequest("POST", "/v1/accounts/alice/debits", nil))
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "%s", rec.Body)
			assert.NotEmpty(t, rec.Header().Get("Retry-After"), "a 503 without Retry-After: %s", rec.Body)
		})
	}
}
