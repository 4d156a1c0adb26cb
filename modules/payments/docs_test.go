package payments_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/payments.md is
// an excerpt of example_test.go, whose examples go test runs.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/payments.md", "example_test.go")
}
