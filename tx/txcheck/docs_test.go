package txcheck_test

import (
	"testing"

	"github.com/txkit/txkit/internal/doccheck"
)

// TestDocsShowTestedCode checks that every Go sample in docs/txcheck.md is
// an excerpt of the corpus file whose findings TestCorpus checks: the
// guide's wrong examples are reported, its right ones are not.
func TestDocsShowTestedCode(t *testing.T) {
	doccheck.Excerpts(t, "../../docs/txcheck.md", "testdata/docs/docs.go")
}
