package txcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// origin is what txcheck knows of where a ctx comes from.
type origin uint8

const (
	unknown origin = iota // cannot tell: trusted
	inside                // the scope's ctx or derived from it
	outside               // context.Background(), TODO() or a ctx from outside the scope
)

// maxDepth bounds how many assignments and calls a ctx is followed
// through; real code needs two or three.
const maxDepth = 16

// classify tells where the ctx e, used in s, comes from. For outside, root
// is the expression to replace by s's ctx: the Background() call or the
// outer variable.
func (c *checker) classify(e ast.Expr, s *scope, depth int) (o origin, root ast.Expr) {
	if depth > maxDepth || e == nil {
		return unknown, nil
	}
	info := c.pass.TypesInfo
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		obj, ok := info.ObjectOf(e).(*types.Var)
		if !ok {
			return unknown, nil
		}
		if obj == s.ctx {
			return inside, nil
		}
		if !isContext(obj.Type()) {
			return unknown, nil
		}
		if !s.contains(obj.Pos()) {
			// Declared outside the scope: the ctx of an enclosing scope
			// (or derived from it) joins that scope's transaction and is
			// trusted; any other is the bug. A variable that s itself
			// gives its own ctx holds that ctx at the call, or cannot be
			// proven to hold another.
			if c.givenInside(obj, s, depth) {
				return unknown, nil
			}
			for p := s.parent; p != nil; p = p.parent {
				if o, _ := c.classify(e, p, depth+1); o != outside {
					return unknown, nil
				}
			}
			return outside, e
		}
		return c.classifyVar(obj, s, depth)
	case *ast.SelectorExpr:
		// A package-level ctx variable of another package.
		if obj, ok := info.Uses[e.Sel].(*types.Var); ok && !obj.IsField() && isContext(obj.Type()) {
			return outside, e
		}
		return unknown, nil
	case *ast.CallExpr:
		fn := callee(info, e)
		if fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == "context" && (fn.Name() == "Background" || fn.Name() == "TODO") {
			return outside, e
		}
		// A function that takes a ctx and returns one derives it:
		// context.WithTimeout, WithValue, a tracer's Start.
		tv, ok := info.Types[e.Fun]
		if !ok || !tv.IsValue() {
			return unknown, nil // a conversion
		}
		sig, ok := tv.Type.Underlying().(*types.Signature)
		if !ok || sig.Results().Len() == 0 || !isContext(sig.Results().At(0).Type()) {
			return unknown, nil
		}
		for _, a := range e.Args {
			if t := info.TypeOf(a); t != nil && isContext(t) {
				return c.classify(a, s, depth+1)
			}
		}
	}
	return unknown, nil
}

// classifyVar tells where a variable declared in s gets its ctx: from all
// its assignments, which must agree.
func (c *checker) classifyVar(obj *types.Var, s *scope, depth int) (origin, ast.Expr) {
	as := c.assigns[obj]
	if len(as) == 0 {
		return unknown, nil // a parameter of a helper closure: trusted
	}
	var (
		res  origin
		root ast.Expr
	)
	for i, rhs := range as {
		o, r := c.classify(rhs, s, depth+1)
		if o == unknown || (i > 0 && o != res) {
			return unknown, nil
		}
		if i == 0 {
			res, root = o, r
		}
	}
	return res, root
}

// givenInside reports whether an assignment inside s gives obj, a variable
// declared outside s, s's ctx or a ctx derived from it.
func (c *checker) givenInside(obj *types.Var, s *scope, depth int) bool {
	for _, rhs := range c.assigns[obj] {
		if rhs == nil || !s.contains(rhs.Pos()) {
			continue
		}
		if o, _ := c.classify(rhs, s, depth+1); o == inside {
			return true
		}
	}
	return false
}

// A consumer is a call that takes a ctx to the database (or to a txkit
// scope or hook): with the wrong ctx it runs outside the transaction.
type consumer struct {
	arg  ast.Expr // the ctx argument
	name string   // Collection.InsertOne
	via  string   // for a function of this package: the call its ctx reaches
}

// summary says which ctx parameter of a function of this package reaches
// the database, and through which call.
type summary struct {
	param int    // -1: none
	via   string // Collection.InsertOne
	busy  bool   // being computed: a recursive call
}

// consumerOf returns the consumer that call is, if it is one.
func (c *checker) consumerOf(call *ast.CallExpr) (consumer, bool) {
	if len(call.Args) == 0 {
		return consumer{}, false
	}
	if name, ok := c.decorated(call.Fun); ok {
		return consumer{arg: call.Args[0], name: name}, true
	}
	fn := callee(c.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil {
		return consumer{}, false
	}
	sig := fn.Type().(*types.Signature)
	recv := recvName(fn)
	name := fn.Name()
	if recv != "" {
		name = recv + "." + name
	}
	firstCtx := sig.Params().Len() > 0 && isContext(sig.Params().At(0).Type())
	switch fn.Pkg().Path() {
	case mongoPath:
		if firstCtx && recv != "" && recv != "Session" {
			return consumer{arg: call.Args[0], name: name}, true
		}
	case txPath:
		switch name {
		case "Runner.Run", "Runner.Begin", "Do", "AfterCommit", "AfterCompletion", "BeforeCommit", "SetRollbackOnly":
			if firstCtx {
				return consumer{arg: call.Args[0], name: "tx." + name}, true
			}
		}
	case batchPath:
		switch name {
		case "Executor.Execute", "Collect":
			if firstCtx {
				return consumer{arg: call.Args[0], name: "batch." + name}, true
			}
		}
	}
	if fn.Pkg() != c.pass.Pkg {
		return consumer{}, false
	}
	var sum *summary
	if isInterfaceMethod(fn) {
		sum = c.summarizeImpls(fn)
	} else {
		sum = c.summarize(fn)
	}
	if sum.param < 0 || sum.param >= len(call.Args) || (sig.Variadic() && sum.param >= sig.Params().Len()-1) {
		return consumer{}, false
	}
	return consumer{arg: call.Args[sum.param], name: name, via: sum.via}, true
}

// summarize finds whether a ctx parameter of fn, a function of this
// package, reaches a consumer.
func (c *checker) summarize(fn *types.Func) *summary {
	if s, ok := c.sums[fn]; ok {
		if s.busy {
			return &summary{param: -1}
		}
		return s
	}
	sum := &summary{param: -1, busy: true}
	c.sums[fn] = sum
	defer func() { sum.busy = false }()
	decl := c.decls[fn]
	if decl == nil {
		return sum
	}
	i := 0
	for _, field := range decl.Type.Params.List {
		names := field.Names
		if len(names) == 0 {
			i++
			continue
		}
		for _, id := range names {
			obj := c.pass.TypesInfo.Defs[id]
			if obj == nil || !isContext(obj.Type()) || id.Name == "_" {
				i++
				continue
			}
			s := &scope{start: decl.Pos(), end: decl.End(), ctx: obj}
			ast.Inspect(decl.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || sum.param >= 0 {
					return sum.param < 0
				}
				if con, ok := c.consumerOf(call); ok {
					if o, _ := c.classify(con.arg, s, 0); o == inside {
						sum.param, sum.via = i, con.name
						if con.via != "" {
							sum.via = con.via
						}
					}
				}
				return true
			})
			if sum.param >= 0 {
				return sum
			}
			i++
		}
	}
	return sum
}

// checkContexts reports consumers in a scope given a ctx from outside it.
func (c *checker) checkContexts() {
	for _, f := range c.pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			s := c.innermost(call.Pos())
			if s == nil {
				return true
			}
			con, ok := c.consumerOf(call)
			if !ok {
				return true
			}
			if o, root := c.classify(con.arg, s, 0); o == outside {
				c.reportOuter(call, con, s, root)
			}
			return true
		})
	}
}

func (c *checker) reportOuter(call *ast.CallExpr, con consumer, s *scope, root ast.Expr) {
	what := con.name
	if con.via != "" {
		what = fmt.Sprintf("%s (it passes its ctx to %s)", con.name, con.via)
	}
	ctxText := types.ExprString(con.arg)
	d := analysis.Diagnostic{
		Pos: con.arg.Pos(),
		End: con.arg.End(),
		Message: fmt.Sprintf("%s runs outside the %s: ctx %s is not %s nor derived from it; pass that ctx",
			what, s.unit, ctxText, s.ctxDesc),
	}
	if s.ctx == nil {
		d.Message = fmt.Sprintf("%s runs outside the %s: ctx %s is not %s; name the callback's ctx parameter and pass it",
			what, s.unit, ctxText, s.ctxDesc)
	} else if root != nil && s.contains(root.Pos()) && !c.fixed[root.Pos()] && c.resolves(s.ctx, root.Pos()) {
		c.fixed[root.Pos()] = true
		d.SuggestedFixes = []analysis.SuggestedFix{{
			Message:   fmt.Sprintf("Pass %s, %s", s.ctx.Name(), s.ctxDesc),
			TextEdits: []analysis.TextEdit{{Pos: root.Pos(), End: root.End(), NewText: []byte(s.ctx.Name())}},
		}}
	}
	c.report(d)
}

// resolves reports whether obj's name, written at pos, means obj (it is
// not shadowed there).
func (c *checker) resolves(obj types.Object, pos token.Pos) bool {
	inner := c.pass.Pkg.Scope().Innermost(pos)
	if inner == nil {
		return false
	}
	_, found := inner.LookupParent(obj.Name(), pos)
	return found == obj
}

// decorated tells whether fun is a variable holding a function that a
// decorator.Transactional wrapper returned: calling it starts (or joins) a
// scope with the ctx it is given.
func (c *checker) decorated(fun ast.Expr) (string, bool) {
	id, ok := ast.Unparen(fun).(*ast.Ident)
	if !ok {
		return "", false
	}
	v, ok := c.pass.TypesInfo.Uses[id].(*types.Var)
	if !ok {
		return "", false
	}
	as := c.assigns[v]
	if len(as) != 1 {
		return "", false
	}
	call, ok := ast.Unparen(as[0]).(*ast.CallExpr)
	if !ok {
		return "", false
	}
	fn := callee(c.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != decoratorPath || !strings.HasPrefix(fn.Name(), "Transactional") {
		return "", false
	}
	sig, ok := v.Type().Underlying().(*types.Signature)
	if !ok || sig.Params().Len() == 0 || !isContext(sig.Params().At(0).Type()) {
		return "", false
	}
	return id.Name + " (from decorator." + fn.Name() + ")", true
}

func isInterfaceMethod(fn *types.Func) bool {
	sig := fn.Type().(*types.Signature)
	return sig.Recv() != nil && types.IsInterface(sig.Recv().Type())
}

// summarizeImpls summarizes an interface method by the implementations
// this package declares: its ctx reaches the database if it does in every
// one of them (and there is one), as in a decorator around a repository.
func (c *checker) summarizeImpls(m *types.Func) *summary {
	if s, ok := c.sums[m]; ok {
		if s.busy {
			return &summary{param: -1}
		}
		return s
	}
	sum := &summary{param: -1, busy: true}
	c.sums[m] = sum
	defer func() { sum.busy = false }()
	iface, ok := m.Type().(*types.Signature).Recv().Type().Underlying().(*types.Interface)
	if !ok {
		return sum
	}
	param, via, impls := -1, "", 0
	scope := c.pass.Pkg.Scope()
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok || tn.IsAlias() || types.IsInterface(tn.Type()) {
			continue
		}
		var t types.Type = tn.Type()
		if !types.Implements(t, iface) {
			t = types.NewPointer(t)
			if !types.Implements(t, iface) {
				continue
			}
		}
		obj, _, _ := types.LookupFieldOrMethod(t, false, c.pass.Pkg, m.Name())
		impl, ok := obj.(*types.Func)
		if !ok {
			return sum
		}
		s := c.summarize(impl)
		if s.param < 0 || (impls > 0 && s.param != param) {
			return sum // one implementation keeps its ctx away from the database
		}
		param, via, impls = s.param, s.via, impls+1
	}
	if impls > 0 {
		sum.param, sum.via = param, via
	}
	return sum
}
