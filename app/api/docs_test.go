package api_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/fx.md is an
// excerpt of example_test.go, whose example go test runs.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/fx.md", "example_test.go")
}

// TestModulesGuideShowsTestedCode checks docs/modules.md the same way.
func TestModulesGuideShowsTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/modules.md", "example_test.go", "../../tx/example_test.go")
}
