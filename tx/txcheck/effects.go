package txcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"
)

// rerunHint ends every message about an effect in a re-runnable callback.
const rerunHint = "the callback runs again when the transaction is retried; do it in tx.AfterCommit or outside the callback"

// checkEffects reports effects in the outermost re-runnable callbacks, and
// go statements that take a scope's ctx anywhere.
func (c *checker) checkEffects() {
	for _, s := range c.scopes {
		if s.rerun && !c.inRerun(s.parent) {
			c.effectsIn(s)
		}
	}
	for _, f := range c.pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				c.checkGo(g)
			}
			return true
		})
	}
}

func (c *checker) inRerun(s *scope) bool {
	for ; s != nil; s = s.parent {
		if s.rerun {
			return true
		}
	}
	return false
}

// effectsIn reports the effects in s's body that a re-run repeats.
func (c *checker) effectsIn(s *scope) {
	info := c.pass.TypesInfo
	ast.Inspect(s.lit.Body, func(n ast.Node) bool {
		if n == nil {
			return true
		}
		if c.inExit(n.Pos()) {
			return false
		}
		switch n := n.(type) {
		case *ast.SendStmt:
			if v := c.outerVar(n.Chan, s); v != nil {
				c.effect(n, s, fmt.Sprintf("send on channel %s", types.ExprString(n.Chan)))
			}
		case *ast.IncDecStmt:
			if c.outerVar(n.X, s) != nil && !c.reset(n.X, s, n.Pos()) {
				c.effect(n, s, fmt.Sprintf("%s%s on %s, declared outside the callback,", types.ExprString(n.X), n.Tok, c.outerVar(n.X, s).Name()))
			}
		case *ast.AssignStmt:
			c.assignEffect(n, s)
		case *ast.CallExpr:
			if fn := callee(info, n); fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == httpPath && isRequest(fn) {
				c.effect(n, s, "HTTP request "+recvPrefix(fn)+fn.Name())
			}
		}
		return true
	})
}

func (c *checker) assignEffect(as *ast.AssignStmt, s *scope) {
	switch as.Tok {
	case token.ADD_ASSIGN, token.SUB_ASSIGN, token.MUL_ASSIGN, token.QUO_ASSIGN, token.REM_ASSIGN,
		token.SHL_ASSIGN, token.SHR_ASSIGN, token.XOR_ASSIGN:
		// |=, &= and &^= are idempotent: a re-run changes nothing.
		lhs := as.Lhs[0]
		if v := c.outerVar(lhs, s); v != nil && !c.reset(lhs, s, as.Pos()) {
			c.effect(as, s, fmt.Sprintf("%s %s on %s, declared outside the callback,", types.ExprString(lhs), as.Tok, v.Name()))
		}
	case token.ASSIGN:
		for i, lhs := range as.Lhs {
			v := c.outerVar(lhs, s)
			if v == nil || c.reset(lhs, s, as.Pos()) {
				continue
			}
			if idx, ok := ast.Unparen(lhs).(*ast.IndexExpr); ok {
				if t := c.pass.TypesInfo.TypeOf(idx.X); t != nil {
					if _, isMap := t.Underlying().(*types.Map); isMap {
						c.effect(as, s, fmt.Sprintf("write to map %s, declared outside the callback,", types.ExprString(idx.X)))
						continue
					}
				}
			}
			if len(as.Rhs) == len(as.Lhs) && c.appendsTo(as.Rhs[i], lhs) {
				c.effect(as, s, fmt.Sprintf("append to %s, declared outside the callback,", types.ExprString(lhs)))
			}
		}
	}
}

// appendsTo reports whether rhs is append(lhs, …).
func (c *checker) appendsTo(rhs, lhs ast.Expr) bool {
	call, ok := ast.Unparen(rhs).(*ast.CallExpr)
	if !ok || len(call.Args) == 0 {
		return false
	}
	id, ok := ast.Unparen(call.Fun).(*ast.Ident)
	if !ok {
		return false
	}
	if b, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); !ok || b.Name() != "append" {
		return false
	}
	return types.ExprString(ast.Unparen(call.Args[0])) == types.ExprString(ast.Unparen(lhs))
}

// outerVar returns the variable that the assignable expression e writes
// into, if it is declared outside s's callback.
func (c *checker) outerVar(e ast.Expr, s *scope) *types.Var {
	info := c.pass.TypesInfo
	for {
		switch x := ast.Unparen(e).(type) {
		case *ast.Ident:
			v, ok := info.ObjectOf(x).(*types.Var)
			if !ok || s.contains(v.Pos()) {
				return nil
			}
			return v
		case *ast.SelectorExpr:
			if v, ok := info.Uses[x.Sel].(*types.Var); ok && !v.IsField() {
				return v // pkg.Var
			}
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		default:
			return nil // a call result, a composite literal: nothing captured
		}
	}
}

// reset reports whether the callback sets e (or the variable it indexes)
// afresh before pos, or clears it: then a re-run starts over and the effect
// is not repeated.
func (c *checker) reset(e ast.Expr, s *scope, pos token.Pos) bool {
	want := map[string]bool{types.ExprString(ast.Unparen(e)): true}
	for x := ast.Unparen(e); ; {
		idx, ok := x.(*ast.IndexExpr)
		if !ok {
			break
		}
		x = ast.Unparen(idx.X)
		want[types.ExprString(x)] = true
	}
	found := false
	ast.Inspect(s.lit.Body, func(n ast.Node) bool {
		if found || n == nil || n.Pos() >= pos {
			return false
		}
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN && len(n.Lhs) == len(n.Rhs) {
				for i, l := range n.Lhs {
					if want[types.ExprString(ast.Unparen(l))] && !c.appendsTo(n.Rhs[i], l) {
						found = true
					}
				}
			}
		case *ast.CallExpr:
			if id, ok := ast.Unparen(n.Fun).(*ast.Ident); ok && id.Name == "clear" && len(n.Args) == 1 {
				if _, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); ok && want[types.ExprString(ast.Unparen(n.Args[0]))] {
					found = true
				}
			}
		}
		return true
	})
	return found
}

func (c *checker) effect(n ast.Node, s *scope, what string) {
	c.report(analysis.Diagnostic{
		Pos:     n.Pos(),
		End:     n.End(),
		Message: fmt.Sprintf("%s in a re-runnable %s: %s", what, s.kind, rerunHint),
	})
}

// inExit reports whether pos is in an AfterCommit hook.
func (c *checker) inExit(pos token.Pos) bool {
	for _, e := range c.exits {
		if e[0] <= pos && pos < e[1] {
			return true
		}
	}
	return false
}

// isRequest reports whether fn, of net/http, sends a request.
func isRequest(fn *types.Func) bool {
	switch recvName(fn) {
	case "":
		switch fn.Name() {
		case "Get", "Head", "Post", "PostForm":
			return true
		}
	case "Client":
		switch fn.Name() {
		case "Do", "Get", "Head", "Post", "PostForm":
			return true
		}
	case "Transport":
		return fn.Name() == "RoundTrip"
	}
	return false
}

func recvPrefix(fn *types.Func) string {
	if r := recvName(fn); r != "" {
		return "(*http." + r + ")."
	}
	return "http."
}

// checkGo reports a go statement in a scope that hands the scope's ctx to
// the new goroutine: a driver session is not safe for concurrent use.
func (c *checker) checkGo(g *ast.GoStmt) {
	s := c.innermost(g.Pos())
	if s == nil {
		return
	}
	found := false
	ast.Inspect(g.Call, func(n ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if found || !ok {
			return !found
		}
		if v, ok := c.pass.TypesInfo.Uses[id].(*types.Var); ok && isContext(v.Type()) {
			in := c.innermost(id.Pos())
			if in == nil {
				return true
			}
			if o, _ := c.classify(id, in, 0); o == inside {
				found = true
			}
		}
		return true
	})
	if found {
		c.report(analysis.Diagnostic{
			Pos: g.Pos(),
			End: g.End(),
			Message: fmt.Sprintf("go statement takes the transaction's ctx into a new goroutine in a %s: a driver session is not safe for concurrent use; "+
				"run the calls in the callback's goroutine", s.kind),
		})
	}
}
