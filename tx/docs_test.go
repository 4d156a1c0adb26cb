package tx_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocsShowTestedCode checks that every Go sample in
// docs/transactions.md is an excerpt of example_test.go, whose examples go
// test compiles and runs: the guide cannot drift from working code.
func TestDocsShowTestedCode(t *testing.T) {
	doc, err := os.ReadFile("../docs/transactions.md")
	require.NoError(t, err)
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	examples := "\n" + strings.Join(normalize(string(src)), "\n") + "\n"

	blocks := goBlocks(string(doc))
	require.NotEmpty(t, blocks)
	for i, b := range blocks {
		lines := normalize(b)
		require.NotEmpty(t, lines, "sample %d is empty", i+1)
		assert.Contains(t, examples, "\n"+strings.Join(lines, "\n")+"\n",
			"sample %d of docs/transactions.md is not in tx/example_test.go:\n%s", i+1, b)
	}
}

// goBlocks returns the contents of the ```go fences in markdown.
func goBlocks(md string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// normalize drops indentation and blank lines, which excerpting changes.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
