package txcheck

import (
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports outer contexts in transactions, effects in re-runnable
// callbacks, manual scopes that are not ended and errors of statements cut
// by the callback's own ctx that do not reach its return. See the package
// documentation.
var Analyzer = &analysis.Analyzer{
	Name: "txcheck",
	Doc: "report MongoDB transaction bugs: outer ctx in a transaction, effects in a re-runnable callback, unended manual scopes, masked errors of statements cut by a derived ctx\n\n" +
		"See https://github.com/txkit/txkit/blob/main/docs/txcheck.md.",
	URL: "https://github.com/txkit/txkit/blob/main/docs/txcheck.md",
	Run: run,
}

// Import paths of the packages whose functions txcheck understands. Only
// these paths count: a package of another module that happens to be named
// tx or mongo is not them.
const (
	txPath        = "github.com/txkit/txkit/tx"
	decoratorPath = "github.com/txkit/txkit/tx/decorator"
	batchPath     = "github.com/txkit/txkit/tx/batch"
	mongoPath     = "go.mongodb.org/mongo-driver/v2/mongo"
	httpPath      = "net/http"
)

// A scope is a stretch of code that runs in a transaction (or a session):
// a callback's body or the region after Runner.Begin.
type scope struct {
	kind       string       // what opened it, for messages: "Runner.Run callback"
	unit       string       // what the scope runs in: "transaction" or "session"
	ctxDesc    string       // its ctx, for messages: "the Runner.Run callback's ctx"
	start, end token.Pos    // the code that runs in the scope
	ctx        types.Object // the ctx that carries the transaction; nil if unnamed
	rerun      bool         // the runner may run it again
	lit        *ast.FuncLit // the callback, nil for a Begin region
	parent     *scope       // the innermost scope around this one
}

func (s *scope) contains(pos token.Pos) bool { return s.start <= pos && pos < s.end }

// checker holds what one run over a package has learned.
type checker struct {
	pass    *analysis.Pass
	scopes  []*scope       // sorted by start; nested scopes follow their parent
	exits   [][2]token.Pos // bodies of AfterCommit hooks: outside any transaction
	assigns map[types.Object][]ast.Expr
	decls   map[*types.Func]*ast.FuncDecl
	sums    map[*types.Func]*summary
	ignored map[string]map[int]bool // file name → lines with //txcheck:ignore
	fixed   map[token.Pos]bool      // roots that already have a suggested fix
}

func run(pass *analysis.Pass) (any, error) {
	c := &checker{
		pass:    pass,
		assigns: make(map[types.Object][]ast.Expr),
		decls:   make(map[*types.Func]*ast.FuncDecl),
		sums:    make(map[*types.Func]*summary),
		ignored: make(map[string]map[int]bool),
		fixed:   make(map[token.Pos]bool),
	}
	c.index()
	c.findScopes()
	c.checkContexts()
	c.checkEffects()
	c.checkManual()
	c.checkMasked()
	return nil, nil
}

// index records declarations, assignments and ignore comments.
func (c *checker) index() {
	info := c.pass.TypesInfo
	for _, f := range c.pass.Files {
		for _, cg := range f.Comments {
			for _, cm := range cg.List {
				if strings.Contains(cm.Text, "//txcheck:ignore") {
					p := c.pass.Fset.Position(cm.Pos())
					if c.ignored[p.Filename] == nil {
						c.ignored[p.Filename] = make(map[int]bool)
					}
					c.ignored[p.Filename][p.Line] = true
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if fn, ok := info.Defs[n.Name].(*types.Func); ok && n.Body != nil {
					c.decls[fn] = n
				}
			case *ast.AssignStmt:
				if n.Tok != token.ASSIGN && n.Tok != token.DEFINE {
					break
				}
				for i, lhs := range n.Lhs {
					id, ok := ast.Unparen(lhs).(*ast.Ident)
					if !ok || id.Name == "_" {
						continue
					}
					obj := info.ObjectOf(id)
					if obj == nil {
						continue
					}
					switch {
					case len(n.Rhs) == len(n.Lhs):
						c.assigns[obj] = append(c.assigns[obj], n.Rhs[i])
					case len(n.Rhs) == 1 && i == 0:
						// v, x := f(): v is f's first result.
						c.assigns[obj] = append(c.assigns[obj], n.Rhs[0])
					default:
						c.assigns[obj] = append(c.assigns[obj], nil) // untraceable
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					obj := info.Defs[id]
					if obj == nil {
						continue
					}
					switch {
					case len(n.Values) == len(n.Names):
						c.assigns[obj] = append(c.assigns[obj], n.Values[i])
					case len(n.Values) == 1 && i == 0:
						c.assigns[obj] = append(c.assigns[obj], n.Values[0])
					case len(n.Values) == 0:
						// var ctx context.Context: its zero value is nil,
						// later assignments decide.
					default:
						c.assigns[obj] = append(c.assigns[obj], nil)
					}
				}
			case *ast.RangeStmt:
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						if obj := info.ObjectOf(id); obj != nil {
							c.assigns[obj] = append(c.assigns[obj], nil)
						}
					}
				}
			}
			return true
		})
	}
}

// report reports a diagnostic unless its line, or the line above, says
// //txcheck:ignore.
func (c *checker) report(d analysis.Diagnostic) {
	p := c.pass.Fset.Position(d.Pos)
	if lines := c.ignored[p.Filename]; lines[p.Line] || lines[p.Line-1] {
		return
	}
	c.pass.Report(d)
}

// findScopes finds the callbacks, Begin regions and AfterCommit bodies of
// the package.
func (c *checker) findScopes() {
	for _, f := range c.pass.Files {
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				c.callScopes(n)
			case *ast.CompositeLit:
				c.stepScopes(n)
			case *ast.AssignStmt:
				if len(stack) > 0 {
					c.beginScope(n, stack[len(stack)-1])
				}
			}
			stack = append(stack, n)
			return true
		})
	}
	sort.SliceStable(c.scopes, func(i, j int) bool {
		if c.scopes[i].start != c.scopes[j].start {
			return c.scopes[i].start < c.scopes[j].start
		}
		return c.scopes[i].end > c.scopes[j].end
	})
	for i, s := range c.scopes {
		for j := i - 1; j >= 0; j-- {
			if c.scopes[j].contains(s.start) && s.end <= c.scopes[j].end {
				s.parent = c.scopes[j]
				break
			}
		}
	}
}

// callbackArgs returns the arguments of call that are transaction
// callbacks, what takes them and whether they may be re-run; hook is true
// for AfterCommit-like calls, whose function runs outside the transaction.
func (c *checker) callbackArgs(call *ast.CallExpr) (args []ast.Expr, kind string, rerun, hook bool) {
	fn := callee(c.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil {
		return nil, "", false, false
	}
	at := func(i int) []ast.Expr {
		if i < len(call.Args) {
			return call.Args[i : i+1]
		}
		return nil
	}
	recv := recvName(fn)
	switch fn.Pkg().Path() {
	case txPath:
		switch {
		case recv == "Runner" && fn.Name() == "Run":
			return at(1), "Runner.Run callback", true, false
		case recv == "" && fn.Name() == "Do":
			return at(2), "tx.Do callback", true, false
		case recv == "" && (fn.Name() == "AfterCommit" || fn.Name() == "AfterCompletion"):
			return at(1), "", false, true
		}
	case decoratorPath:
		if recv == "" && strings.HasPrefix(fn.Name(), "Transactional") {
			return at(1), "decorator." + fn.Name() + " function", true, false
		}
	case batchPath:
		if recv == "" && fn.Name() == "Collect" && len(call.Args) > 2 && !call.Ellipsis.IsValid() {
			return call.Args[2:], "batch step", true, false
		}
	case mongoPath:
		switch {
		case recv == "Session" && fn.Name() == "WithTransaction":
			return at(1), "Session.WithTransaction callback", true, false
		case recv == "" && fn.Name() == "WithSession":
			return at(2), "mongo.WithSession callback", false, false
		case recv == "Client" && fn.Name() == "UseSession":
			return at(1), "Client.UseSession callback", false, false
		case recv == "Client" && fn.Name() == "UseSessionWithOptions":
			return at(2), "Client.UseSessionWithOptions callback", false, false
		}
	}
	return nil, "", false, false
}

func (c *checker) callScopes(call *ast.CallExpr) {
	args, kind, rerun, hook := c.callbackArgs(call)
	for _, arg := range args {
		lit := c.funcLit(arg)
		if lit == nil {
			continue
		}
		if hook {
			c.exits = append(c.exits, [2]token.Pos{lit.Pos(), lit.End()})
			continue
		}
		c.addLit(lit, kind, rerun)
	}
}

// stepScopes finds batch.Step{Run: func(ctx) …} literals.
func (c *checker) stepScopes(lit *ast.CompositeLit) {
	t := c.pass.TypesInfo.TypeOf(lit)
	if t == nil || !isNamed(t, batchPath, "Step") {
		return
	}
	for i, elt := range lit.Elts {
		var v ast.Expr
		if kv, ok := elt.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Run" {
				v = kv.Value
			}
		} else if i == 1 { // batch.Step{name, run}
			v = elt
		}
		if fl := c.funcLit(v); fl != nil {
			c.addLit(fl, "batch step", true)
		}
	}
}

// funcLit returns the function literal that e is, or that the local
// variable e was assigned once.
func (c *checker) funcLit(e ast.Expr) *ast.FuncLit {
	if e == nil {
		return nil
	}
	switch e := ast.Unparen(e).(type) {
	case *ast.FuncLit:
		return e
	case *ast.Ident:
		obj, ok := c.pass.TypesInfo.Uses[e].(*types.Var)
		if !ok || obj.Parent() == obj.Pkg().Scope() {
			return nil
		}
		if as := c.assigns[obj]; len(as) == 1 {
			if fl, ok := ast.Unparen(as[0]).(*ast.FuncLit); ok {
				return fl
			}
		}
	}
	return nil
}

func (c *checker) addLit(lit *ast.FuncLit, kind string, rerun bool) {
	for _, s := range c.scopes {
		if s.lit == lit {
			return // a literal passed twice, or found twice
		}
	}
	s := &scope{kind: kind, unit: "transaction", ctxDesc: "the " + kind + "'s ctx", start: lit.Pos(), end: lit.End(), rerun: rerun, lit: lit}
	if strings.Contains(kind, "Session") && !strings.Contains(kind, "WithTransaction") {
		s.unit = "session"
	}
	if ps := lit.Type.Params.List; len(ps) > 0 && len(ps[0].Names) > 0 && ps[0].Names[0].Name != "_" {
		s.ctx = c.pass.TypesInfo.Defs[ps[0].Names[0]]
	}
	c.scopes = append(c.scopes, s)
}

// beginScope records the region after ctx, t, err := r.Begin(…) up to the
// statement of the same block that commits or rolls back (or the block's
// end).
func (c *checker) beginScope(as *ast.AssignStmt, parent ast.Node) {
	if len(as.Lhs) != 3 || len(as.Rhs) != 1 {
		return
	}
	call, ok := ast.Unparen(as.Rhs[0]).(*ast.CallExpr)
	if !ok || !c.isBegin(call) {
		return
	}
	stmts := blockStmts(parent)
	if stmts == nil {
		return
	}
	s := &scope{kind: "Runner.Begin scope", unit: "transaction", ctxDesc: "the ctx Runner.Begin returned", start: as.End(), end: parent.End()}
	if id, ok := as.Lhs[0].(*ast.Ident); ok && id.Name != "_" {
		s.ctx = c.pass.TypesInfo.ObjectOf(id)
	}
	var t types.Object
	if id, ok := as.Lhs[1].(*ast.Ident); ok && id.Name != "_" {
		t = c.pass.TypesInfo.ObjectOf(id)
	}
	if t != nil {
		after := false
		for _, st := range stmts {
			if st == ast.Stmt(as) {
				after = true
				continue
			}
			if _, ok := st.(*ast.DeferStmt); after && !ok && c.ends(st, t) {
				s.end = st.End()
				break
			}
		}
	}
	c.scopes = append(c.scopes, s)
}

func (c *checker) isBegin(call *ast.CallExpr) bool {
	fn := callee(c.pass.TypesInfo, call)
	return fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == txPath && recvName(fn) == "Runner" && fn.Name() == "Begin"
}

// blockStmts returns the statements of a block-like node.
func blockStmts(n ast.Node) []ast.Stmt {
	switch n := n.(type) {
	case *ast.BlockStmt:
		return n.List
	case *ast.CaseClause:
		return n.Body
	case *ast.CommClause:
		return n.Body
	}
	return nil
}

// innermost returns the innermost scope around pos, or nil if pos is in
// none or in an AfterCommit hook inside it.
func (c *checker) innermost(pos token.Pos) *scope {
	var in *scope
	for _, s := range c.scopes {
		if s.contains(pos) {
			in = s
		}
	}
	if in == nil {
		return nil
	}
	for _, e := range c.exits {
		if e[0] <= pos && pos < e[1] && in.contains(e[0]) {
			return nil
		}
	}
	return in
}

// callee returns the function or method call calls, generic ones as
// declared, or nil.
func callee(info *types.Info, call *ast.CallExpr) *types.Func {
	fun := ast.Unparen(call.Fun)
	switch f := fun.(type) {
	case *ast.IndexExpr:
		fun = f.X
	case *ast.IndexListExpr:
		fun = f.X
	}
	var id *ast.Ident
	switch f := ast.Unparen(fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		if sel, ok := info.Selections[f]; ok && sel.Kind() != types.MethodVal {
			return nil // a field of function type, or a method expression
		}
		id = f.Sel
	default:
		return nil
	}
	fn, _ := info.Uses[id].(*types.Func)
	if fn == nil {
		return nil
	}
	return fn.Origin()
}

// recvName returns the name of fn's receiver type, or "" for a function.
func recvName(fn *types.Func) string {
	sig, ok := fn.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return ""
	}
	t := sig.Recv().Type()
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := types.Unalias(t).(*types.Named); ok {
		return n.Obj().Name()
	}
	return ""
}

// isNamed reports whether t (or *t) is the named type path.name.
func isNamed(t types.Type, path, name string) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == path && n.Obj().Name() == name
}

// isContext reports whether t is context.Context.
func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}
