package batch_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/batch.md is an
// excerpt of this package's compiled code, whose examples go test runs.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/batch.md", "example_test.go", "step.go")
}
