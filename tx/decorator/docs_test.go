package decorator_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/decorators.md
// is an excerpt of this package's compiled code, whose examples go test runs.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/decorators.md", "example_test.go", "generated_test.go", "internal/example/ledger.go", "internal/example/ledger_tx.go", "internal/example/orders.go")
}
