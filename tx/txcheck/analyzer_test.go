package txcheck_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/txkit/txkit/tx/txcheck"
)

// The corpus under testdata is a module in a workspace with this
// repository (testdata/go.work), so its packages import the real tx, batch,
// decorator and driver packages, offline. Each "// want" is a true
// positive; every other line must stay silent.

// TestCorpus runs the analyzer over the whole corpus at once (loading it
// is the slow part): outer (the outer-ctx check, and outer.go.golden, which
// is outer.go with every suggested fix applied), effects (re-runnable
// callbacks), manual (Begin scopes and Commit errors), lookalike (packages
// named tx and mongo that are not txkit's or the driver's: silent) and
// guides (the repository's guide examples with the ctx swapped).
func TestCorpus(t *testing.T) {
	analysistest.RunWithSuggestedFixes(t, testdata(t), txcheck.Analyzer, "./...")
}

func testdata(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
