package credits_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/credits.md is
// an excerpt of example_test.go, whose examples go test runs.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/credits.md", "example_test.go")
}
