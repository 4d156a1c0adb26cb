// Package doccheck keeps guides honest: every Go sample in a markdown page
// must be an excerpt of Go files that go test compiles (and, for Example
// functions, runs), so a guide cannot drift from working code.
package doccheck

import (
	"os"
	"strings"
	"testing"
)

// Excerpts fails t for each ```go block of the markdown file page that is
// not, line for line (ignoring indentation and blank lines), part of one
// of the Go files sources.
func Excerpts(t testing.TB, page string, sources ...string) {
	t.Helper()
	doc, err := os.ReadFile(page)
	if err != nil {
		t.Fatalf("read %s: %v", page, err)
	}
	texts := make([]string, 0, len(sources))
	for _, name := range sources {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		texts = append(texts, joinLines(normalize(string(src))))
	}
	blocks := GoBlocks(string(doc))
	if len(blocks) == 0 {
		t.Fatalf("%s has no Go samples", page)
	}
	for i, b := range blocks {
		lines := normalize(b)
		if len(lines) == 0 {
			t.Errorf("sample %d of %s is empty", i+1, page)
			continue
		}
		sample := joinLines(lines)
		found := false
		for _, text := range texts {
			found = found || strings.Contains(text, sample)
		}
		if !found {
			t.Errorf("sample %d of %s is not an excerpt of %v:\n%s", i+1, page, sources, b)
		}
	}
}

// GoBlocks returns the contents of the ```go fences in markdown.
func GoBlocks(md string) []string {
	var blocks, cur []string
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

func joinLines(lines []string) string { return "\n" + strings.Join(lines, "\n") + "\n" }
