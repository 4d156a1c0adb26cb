package main

import (
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corpus lists the packages under testdata/corpus that txdecorate must
// decorate correctly: look-alikes of the names, imports and shapes that
// generated code trips over.
var corpus = []struct {
	give string // the package directory, under testdata/corpus
	args string // the command line after the directory's name
}{
	{give: "full", args: "-type Service"},
	{give: "other", args: "-type Closer -constructor NewTxCloser"},
	{give: "ctxvar", args: "-type Store"},
	{give: "ctxname", args: "-type Store"},
	{give: "errembed", args: "-type Failure"},
	{give: "fieldnames", args: "-type Iterator"},
	{give: "noctx", args: "-type Closer"},
	{give: "samenames", args: "-type Repo"},
	{give: "dotimport", args: "-type Service"},
	{give: "ctxalias", args: "-type Service"},
	{give: "generics", args: "-type Service"},
	{give: "generic", args: "-type Repo"},
	{give: "generic", args: "-type Named"},
	{give: "shapes", args: "-type Service"},
	{give: "directives", args: "-type Service"},
}

// TestCorpus runs the txdecorate command in a copy of each corpus package
// inside this module, then checks that the output is the golden file, is
// gofmt-clean, passes the ctx it is given to the runner and the runner's
// ctx to the implementation, that a second run over its own output is
// byte-identical, and that every output compiles and vets. The command is
// built once and run as a program, as go generate runs it (and outside
// the race detector, which would make type-checking crawl).
func TestCorpus(t *testing.T) {
	work, err := os.MkdirTemp("testdata", "run-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(work) })
	bin := tool(t)

	var vetDirs []string
	for _, tt := range corpus {
		t.Run(tt.give, func(t *testing.T) {
			dir := filepath.Join(work, tt.give)
			copyDir(t, filepath.Join("testdata", "corpus", tt.give), dir) // keeps an earlier case's output
			cfg := parseArgs(t, tt.args)
			out := filepath.Join(dir, snake(cfg.typeName)+"_tx.go")
			generate := func() []byte {
				cmd := exec.Command(bin, strings.Fields(tt.args)...)
				cmd.Dir = dir
				msg, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s", msg)
				src, err := os.ReadFile(out)
				require.NoError(t, err)
				return src
			}

			src := generate()
			golden := filepath.Join("testdata", "corpus", tt.give, snake(cfg.typeName)+"_tx.golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, src, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(src), "run go test ./cmd/txdecorate -update to accept changes")

			formatted, err := format.Source(src)
			require.NoError(t, err)
			assert.Equal(t, string(formatted), string(src), "gofmt-clean")
			checkContextFlow(t, src)

			assert.Equal(t, string(src), string(generate()), "a second run over the first one's output is byte-identical")
			if !slices.Contains(vetDirs, "./"+filepath.ToSlash(dir)) {
				vetDirs = append(vetDirs, "./"+filepath.ToSlash(dir))
			}
		})
	}
	if len(vetDirs) == 0 {
		return
	}
	// go vet compiles each package first: it fails on code that does not.
	msg, err := exec.Command("go", append([]string{"vet"}, vetDirs...)...).CombinedOutput()
	assert.NoError(t, err, "go vet of the generated code:\n%s", msg)
}

// checkContextFlow fails unless every method of src that runs a scope
// passes its own first parameter to the runner, and the scope's ctx to the
// wrapped method: the transaction must start on the caller's ctx, and the
// implementation must get the one that carries the session.
func checkContextFlow(t *testing.T, src []byte) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "gen.go", src, 0)
	require.NoError(t, err)
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Recv == nil {
			continue
		}
		var outer *ast.CallExpr
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && outer == nil && len(call.Args) > 0 {
				if _, ok := call.Args[len(call.Args)-1].(*ast.FuncLit); ok || scopeCall(call) {
					outer = call
				}
			}
			return outer == nil
		})
		if outer == nil {
			continue // a pass-through method
		}
		method := fd.Name.Name
		params := fd.Type.Params.List
		require.NotEmpty(t, params, method)
		first := params[0].Names[0].Name
		// tx.Do(ctx, runner, fn, …) or d.runner.Run(ctx, fn, …)
		arg, ok := outer.Args[0].(*ast.Ident)
		if assert.True(t, ok, "%s: the scope's ctx is not an identifier", method) {
			assert.Equal(t, first, arg.Name, "%s: the scope must start on the method's own ctx", method)
		}
		var lit *ast.FuncLit
		for _, a := range outer.Args {
			if l, ok := a.(*ast.FuncLit); ok {
				lit = l
			}
		}
		if !assert.NotNil(t, lit, "%s: no callback", method) {
			continue
		}
		inner := lit.Type.Params.List[0].Names[0].Name
		found := false
		ast.Inspect(lit.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == method {
				if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name != "" {
					found = true
					id, ok := call.Args[0].(*ast.Ident)
					assert.True(t, ok && id.Name == inner, "%s: the implementation must get the scope's ctx %s", method, inner)
				}
			}
			return true
		})
		assert.True(t, found, "%s: the callback does not call the wrapped method", method)
	}
}

func scopeCall(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		if ix, ok := call.Fun.(*ast.IndexExpr); ok {
			sel, ok = ix.X.(*ast.SelectorExpr)
			if !ok {
				return false
			}
		} else {
			return false
		}
	}
	return sel.Sel.Name == "Run" || sel.Sel.Name == "Do"
}

// copyDir copies the files of the directory from (not its subdirectories)
// into to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o644))
	}
}
