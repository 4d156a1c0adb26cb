package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/tools/go/packages"
)

// config is what the command line asks for.
type config struct {
	typeName    string // the interface
	dir         string // the package's directory
	output      string // the file to write; "" for the default
	constructor string // the constructor's name; "" for the default
	command     string // the command line, for the header
}

// loadMode is what generate needs of the package: its syntax for the
// directives, its types for the method sets.
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo

// generate loads the package in cfg.dir and returns the output file's path
// and its contents.
func generate(cfg config) (string, []byte, error) {
	dir, err := filepath.Abs(cfg.dir)
	if err != nil {
		return "", nil, err
	}
	out := cfg.output
	if out == "" {
		out = filepath.Join(dir, snake(cfg.typeName)+"_tx.go")
	} else if !filepath.IsAbs(out) {
		if out, err = filepath.Abs(out); err != nil {
			return "", nil, err
		}
	}
	overlay, err := blankOutput(out)
	if err != nil {
		return "", nil, err
	}

	fset := token.NewFileSet()
	pkgs, err := packages.Load(&packages.Config{Mode: loadMode, Dir: dir, Fset: fset, Overlay: overlay}, ".")
	if err != nil {
		return "", nil, fmt.Errorf("load %s: %w", cfg.dir, err)
	}
	if len(pkgs) != 1 {
		return "", nil, fmt.Errorf("load %s: want one package, got %d", cfg.dir, len(pkgs))
	}
	pkg := pkgs[0]
	// Errors elsewhere in the package are tolerated: code that uses the
	// decorator does not compile until it exists. Only the interface itself
	// must be sound, which newInterface checks.
	if pkg.Types == nil || len(pkg.Syntax) == 0 {
		var msgs []string
		for _, e := range pkg.Errors {
			msgs = append(msgs, e.Error())
		}
		return "", nil, fmt.Errorf("load %s: %s", cfg.dir, strings.Join(msgs, "; "))
	}

	iface, err := newInterface(fset, pkg, cfg.typeName)
	if err != nil {
		return "", nil, err
	}
	src, err := render(cfg, iface)
	if err != nil {
		return "", nil, err
	}
	return out, src, nil
}

// blankOutput returns an overlay that empties the output file, if one was
// generated before: stale generated code, which no longer implements the
// interface, must not get in the way of loading the package. A file that
// txdecorate did not generate is never overwritten.
func blankOutput(out string) (map[string][]byte, error) {
	src, err := os.ReadFile(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(token.NewFileSet(), out, src, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil || !ast.IsGenerated(f) {
		return nil, fmt.Errorf("%s exists and was not generated: refusing to overwrite it", out)
	}
	return map[string][]byte{out: []byte("package " + f.Name.Name + "\n")}, nil
}

// iface is the interface to decorate, as render needs it.
type iface struct {
	pkg     *types.Package
	name    string
	methods []method
}

// method is one method of the interface.
type method struct {
	order    order
	name     string
	sig      *types.Signature
	wrap     bool     // runs in a transaction
	settings settings // for a wrapped method: interface defaults, then the method's own
}

// newInterface finds typeName in pkg and reads its methods and directives.
func newInterface(fset *token.FileSet, pkg *packages.Package, typeName string) (*iface, error) {
	obj, ok := pkg.Types.Scope().Lookup(typeName).(*types.TypeName)
	if !ok {
		return nil, fmt.Errorf("package %s has no type %s", pkg.PkgPath, typeName)
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		return nil, fmt.Errorf("%s: %s is an alias; name the interface itself", fset.Position(obj.Pos()), typeName)
	}
	it, ok := named.Underlying().(*types.Interface)
	if !ok {
		return nil, fmt.Errorf("%s: %s is not an interface", fset.Position(obj.Pos()), typeName)
	}
	if named.TypeParams().Len() > 0 {
		return nil, fmt.Errorf("%s: %s is generic, which txdecorate does not support", fset.Position(obj.Pos()), typeName)
	}
	if !it.IsMethodSet() {
		return nil, fmt.Errorf("%s: %s is a constraint, not an interface of methods", fset.Position(obj.Pos()), typeName)
	}

	typeDoc, fields := syntaxOf(pkg, obj)
	defaults, err := parseDirectives(fset, typeDoc...)
	if err != nil {
		return nil, err
	}
	if defaults.none || defaults.name != "" {
		return nil, fmt.Errorf("%s: txkit:none and txkit:name belong on methods, not on interface %s", fset.Position(defaults.pos), typeName)
	}

	errType := types.Universe.Lookup("error").Type()
	out := &iface{pkg: pkg.Types, name: typeName}
	for m := range it.Methods() {
		if !m.Exported() && m.Pkg() != pkg.Types {
			return nil, fmt.Errorf("%s: method %s of %s is unexported in package %s: it cannot be implemented here", fset.Position(m.Pos()), m.Name(), typeName, m.Pkg().Path())
		}
		sig := m.Type().(*types.Signature)
		if err := checkTypes(sig); err != nil {
			return nil, fmt.Errorf("%s: method %s of %s: %w", fset.Position(m.Pos()), m.Name(), typeName, err)
		}
		var own settings
		if f := fields[m.Pos()]; f != nil {
			if own, err = parseDirectives(fset, f.Doc, f.Comment); err != nil {
				return nil, err
			}
		}
		wrappable := sig.Params().Len() > 0 && isContext(sig.Params().At(0).Type()) &&
			sig.Results().Len() > 0 && types.Identical(sig.Results().At(sig.Results().Len()-1).Type(), errType)
		if !wrappable && own.any() && !own.none {
			return nil, fmt.Errorf("%s: method %s has txkit directives but cannot run in a transaction: its first parameter must be a context.Context and its last result an error", fset.Position(own.pos), m.Name())
		}
		pos := fset.Position(m.Pos())
		out.methods = append(out.methods, method{
			order:    order{other: m.Pkg() != pkg.Types, path: m.Pkg().Path(), file: pos.Filename, offset: pos.Offset},
			name:     m.Name(),
			sig:      sig,
			wrap:     wrappable && !own.none,
			settings: defaults.over(own),
		})
	}
	// Source order reads best, but embedded methods may come from other
	// packages, whose positions depend on load order: sort by file and line.
	slices.SortStableFunc(out.methods, func(a, b method) int { return a.order.compare(b.order) })
	return out, nil
}

// order sorts methods: those declared in the package first, in source
// order, then the others by package, file and position.
type order struct {
	other  bool
	path   string
	file   string
	offset int
}

func (o order) compare(p order) int {
	switch {
	case o.other != p.other:
		if o.other {
			return 1
		}
		return -1
	case o.path != p.path:
		return strings.Compare(o.path, p.path)
	case o.file != p.file:
		return strings.Compare(filepath.Base(o.file), filepath.Base(p.file))
	}
	return o.offset - p.offset
}

// syntaxOf returns the comments on the declaration of obj, and the
// interface method fields of pkg by the position of their name.
func syntaxOf(pkg *packages.Package, obj types.Object) ([]*ast.CommentGroup, map[token.Pos]*ast.Field) {
	var doc []*ast.CommentGroup
	fields := map[token.Pos]*ast.Field{}
	for _, f := range pkg.Syntax {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				for _, spec := range n.Specs {
					if ts, ok := spec.(*ast.TypeSpec); ok && ts.Name.Pos() == obj.Pos() {
						doc = append(doc, ts.Doc, ts.Comment)
						if !n.Lparen.IsValid() {
							doc = append(doc, n.Doc)
						}
					}
				}
			case *ast.InterfaceType:
				for _, f := range n.Methods.List {
					if len(f.Names) == 1 {
						fields[f.Names[0].Pos()] = f
					}
				}
			}
			return true
		})
	}
	return doc, fields
}

// isContext reports whether t is context.Context.
func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

// checkTypes reports an invalid type in sig: one that did not type-check.
func checkTypes(sig *types.Signature) error {
	for _, tuple := range []struct {
		what string
		vars *types.Tuple
	}{{"parameter", sig.Params()}, {"result", sig.Results()}} {
		for i := range tuple.vars.Len() {
			if s := types.TypeString(tuple.vars.At(i).Type(), nil); strings.Contains(s, "invalid type") {
				return fmt.Errorf("the type of %s %d does not compile", tuple.what, i+1)
			}
		}
	}
	return nil
}

// snake turns "LedgerService" into "ledger_service".
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
