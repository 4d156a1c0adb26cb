package tx_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in
// docs/transactions.md is an excerpt of example_test.go, whose examples go
// test compiles and runs: the guide cannot drift from working code.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../docs/transactions.md", "example_test.go")
}

// TestReadmeShowsTestedCode does the same for the README's sample.
func TestReadmeShowsTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../README.md", "example_test.go")
}
