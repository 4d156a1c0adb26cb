package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corpus is the analyzer's test module: a workspace with this repository,
// so that its packages import the real tx and driver packages.
const corpus = "../../tx/txcheck/testdata"

// want is a finding of the corpus, as both ways of running print it.
const want = "outer.go:28:28: Collection.InsertOne runs outside the transaction: ctx context.Background() is not the Runner.Run callback's ctx"

func TestStandaloneAndVetTool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs the go tool")
	}
	bin := filepath.Join(t.TempDir(), "txcheck")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir, err := filepath.Abs(corpus)
	require.NoError(t, err)

	tests := []struct {
		name     string
		give     []string
		wantCode int // the exit code
		wantOut  string
	}{
		{"standalone reports findings", []string{bin, "./outer"}, 3, want},
		{"standalone is quiet on correct code", []string{bin, "./lookalike/..."}, 0, ""},
		{"go run reports findings", []string{"go", "run", "github.com/txkit/txkit/cmd/txcheck", "./outer"}, 1, want},
		{"go vet -vettool reports findings", []string{"go", "vet", "-vettool=" + bin, "./outer"}, 1, want},
		{"go vet -vettool is quiet on correct code", []string{"go", "vet", "-vettool=" + bin, "./lookalike/..."}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.give[0], tt.give[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=")
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantCode, code, "%s", out)
			if tt.wantOut == "" {
				assert.Empty(t, strings.TrimSpace(string(out)))
			} else {
				assert.Contains(t, string(out), tt.wantOut)
			}
		})
	}
}
