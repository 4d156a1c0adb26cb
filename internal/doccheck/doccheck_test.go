package doccheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}

func TestExcerpts(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "example_test.go")
	require.NoError(t, os.WriteFile(src, []byte("func Example() {\n\tx := 1\n\n\tfmt.Println(x)\n}\n"), 0o644))
	page := filepath.Join(dir, "page.md")

	tests := []struct {
		give string
		want bool // failed
	}{
		{give: "```go\nx := 1\nfmt.Println(x)\n```\n", want: false},
		{give: "```go\n  x := 1\n\n  fmt.Println(x)\n```\n", want: false},
		{give: "```go\nx := 2\n```\n", want: true},
		{give: "```go\nx := 1\n```\ntext\n```go\nfmt.Println(y)\n```\n", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			require.NoError(t, os.WriteFile(page, []byte(tt.give), 0o644))
			r := &recorder{TB: t}
			Excerpts(r, page, src)
			require.Equal(t, tt.want, r.failed)
		})
	}
}
