package txcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/cfg"
)

// checkManual checks each Runner.Begin and each Commit.
func (c *checker) checkManual() {
	for _, f := range c.pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			var body *ast.BlockStmt
			switch n := n.(type) {
			case *ast.FuncDecl:
				body = n.Body
			case *ast.FuncLit:
				body = n.Body
			case *ast.ExprStmt:
				c.ignoredCommit(n.X, n, "")
			case *ast.DeferStmt:
				c.ignoredCommit(n.Call, n, "deferred ")
			case *ast.GoStmt:
				c.ignoredCommit(n.Call, n, "")
			}
			if body != nil {
				c.beginsIn(body)
			}
			return true
		})
	}
}

// ignoredCommit reports e if it is a Commit whose error nobody reads. An
// explicit _ = t.Commit(ctx) is a decision, not an oversight: not reported.
func (c *checker) ignoredCommit(e ast.Expr, stmt ast.Node, how string) {
	call, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok {
		return
	}
	fn := callee(c.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil {
		return
	}
	var name string
	switch {
	case fn.Pkg().Path() == txPath && recvName(fn) == "Tx" && fn.Name() == "Commit":
		name = "Tx.Commit"
	case fn.Pkg().Path() == mongoPath && recvName(fn) == "Session" && fn.Name() == "CommitTransaction":
		name = "Session.CommitTransaction"
	default:
		return
	}
	c.report(analysis.Diagnostic{
		Pos: stmt.Pos(),
		End: stmt.End(),
		Message: fmt.Sprintf("the error of %s%s is ignored: a commit can fail (a transient error, an unknown outcome, a rollback-only transaction) "+
			"and the work is then not saved; return or handle it", how, name),
	})
}

// beginsIn checks the Runner.Begin calls of one function body (not those
// of the function literals in it, which are checked on their own).
func (c *checker) beginsIn(body *ast.BlockStmt) {
	var begins []*ast.AssignStmt
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.AssignStmt:
			if len(n.Rhs) == 1 {
				if call, ok := ast.Unparen(n.Rhs[0]).(*ast.CallExpr); ok && c.isBegin(call) {
					begins = append(begins, n)
				}
			}
		}
		return true
	})
	if len(begins) == 0 {
		return
	}
	var graph *cfg.CFG
	for _, as := range begins {
		if len(as.Lhs) != 3 {
			continue
		}
		id, ok := as.Lhs[1].(*ast.Ident)
		if !ok {
			continue
		}
		if id.Name == "_" {
			if c0, ok := as.Lhs[0].(*ast.Ident); ok && c0.Name == "_" {
				continue // Begin called for its error only, as tests of its failures do
			}
			c.report(analysis.Diagnostic{
				Pos:     id.Pos(),
				End:     id.End(),
				Message: "the *tx.Tx of Runner.Begin is discarded: the scope can never be committed or rolled back; keep it and defer its Rollback",
			})
			continue
		}
		t := c.pass.TypesInfo.ObjectOf(id)
		if t == nil || c.escapes(body, t) || c.deferredEnd(body, t) {
			continue
		}
		var errObj types.Object
		if eid, ok := as.Lhs[2].(*ast.Ident); ok && eid.Name != "_" {
			errObj = c.pass.TypesInfo.ObjectOf(eid)
		}
		if graph == nil {
			graph = cfg.New(body, c.mayReturn)
		}
		if c.leaks(graph, as, t, errObj) {
			c.report(analysis.Diagnostic{
				Pos: as.Pos(),
				End: as.End(),
				Message: fmt.Sprintf("the scope %s of Runner.Begin is not ended on every path: a return leaves its transaction open; "+
					"add defer %s.Rollback(ctx) after the error check (a no-op after Commit)", t.Name(), t.Name()),
			})
		}
	}
}

// escapes reports whether t is used other than by calling its methods or
// comparing it with nil: then it may be ended elsewhere, and txcheck
// cannot tell.
func (c *checker) escapes(body *ast.BlockStmt, t types.Object) bool {
	info := c.pass.TypesInfo
	escaped := false
	var stack []ast.Node
	lits := 0 // function literals around the node
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil {
			if _, ok := stack[len(stack)-1].(*ast.FuncLit); ok {
				lits--
			}
			stack = stack[:len(stack)-1]
			return true
		}
		if _, ok := n.(*ast.FuncLit); ok {
			lits++
		}
		if id, ok := n.(*ast.Ident); ok && info.Uses[id] == t && len(stack) > 0 {
			if lits > 0 {
				escaped = true // ended (or not) when the literal runs
			}
			switch p := stack[len(stack)-1].(type) {
			case *ast.SelectorExpr:
				if p.X != id {
					escaped = true
				}
			case *ast.BinaryExpr:
				if !isNil(info, p.X) && !isNil(info, p.Y) {
					escaped = true
				}
			default:
				escaped = true
			}
		}
		stack = append(stack, n)
		return true
	})
	return escaped
}

func isNil(info *types.Info, e ast.Expr) bool {
	tv, ok := info.Types[e]
	return ok && tv.IsNil()
}

// deferredEnd reports whether body defers t's Rollback or Commit, directly
// or in a deferred function literal.
func (c *checker) deferredEnd(body *ast.BlockStmt, t types.Object) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		d, ok := n.(*ast.DeferStmt)
		if !ok || found {
			return !found
		}
		if c.endCall(d.Call, t) {
			found = true
		} else if lit, ok := ast.Unparen(d.Call.Fun).(*ast.FuncLit); ok && c.ends(lit.Body, t) {
			found = true
		}
		return true
	})
	return found
}

// endCall reports whether call is t.Commit(…) or t.Rollback(…).
func (c *checker) endCall(call *ast.CallExpr, t types.Object) bool {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || (sel.Sel.Name != "Commit" && sel.Sel.Name != "Rollback") {
		return false
	}
	id, ok := ast.Unparen(sel.X).(*ast.Ident)
	return ok && c.pass.TypesInfo.Uses[id] == t
}

// ends reports whether n calls t.Commit or t.Rollback, outside any
// function literal (one inside a deferred literal is found by deferredEnd).
func (c *checker) ends(n ast.Node, t types.Object) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if found {
			return false
		}
		switch n := n.(type) {
		case *ast.CallExpr:
			if c.endCall(n, t) {
				found = true
			}
		case *ast.FuncLit:
			return false
		}
		return true
	})
	return found
}

// leaks reports whether a path of graph goes from the Begin statement as to
// a return without ending t. Paths on which Begin failed (err != nil,
// t == nil) are not followed.
func (c *checker) leaks(graph *cfg.CFG, as *ast.AssignStmt, t, errObj types.Object) bool {
	var start *cfg.Block
	idx := -1
	for _, b := range graph.Blocks {
		for i, n := range b.Nodes {
			if n == ast.Node(as) {
				start, idx = b, i
			}
		}
	}
	if start == nil || !start.Live {
		return false
	}
	seen := make(map[*cfg.Block]bool)
	var walk func(b *cfg.Block, from int) bool
	walk = func(b *cfg.Block, from int) bool {
		for _, n := range b.Nodes[from:] {
			if n == ast.Node(as) {
				return false // round a loop to Begin again
			}
			if c.ends(n, t) {
				return false
			}
		}
		if b.Return() != nil {
			return true
		}
		succs := b.Succs
		if len(succs) == 2 && len(b.Nodes) > 0 {
			if cond, ok := b.Nodes[len(b.Nodes)-1].(ast.Expr); ok {
				switch c.failed(cond, t, errObj) {
				case 1: // cond true means Begin failed
					succs = succs[1:]
				case -1: // cond false means Begin failed
					succs = succs[:1]
				}
			}
		}
		for _, s := range succs {
			if !seen[s] {
				seen[s] = true
				if walk(s, 0) {
					return true
				}
			}
		}
		return false
	}
	return walk(start, idx+1)
}

// failed tells whether cond says Begin failed when true (1), when false
// (-1), or neither (0): err != nil, t == nil and their negations, alone or
// first in a chain of || (or &&).
func (c *checker) failed(cond ast.Expr, t, errObj types.Object) int {
	info := c.pass.TypesInfo
	b, ok := ast.Unparen(cond).(*ast.BinaryExpr)
	if !ok {
		return 0
	}
	switch b.Op {
	case token.LOR:
		if c.failed(b.X, t, errObj) == 1 || c.failed(b.Y, t, errObj) == 1 {
			return 1
		}
		return 0
	case token.LAND:
		if c.failed(b.X, t, errObj) == -1 || c.failed(b.Y, t, errObj) == -1 {
			return -1
		}
		return 0
	case token.EQL, token.NEQ:
	default:
		return 0
	}
	x, y := ast.Unparen(b.X), ast.Unparen(b.Y)
	if isNil(info, x) {
		x, y = y, x
	}
	id, ok := x.(*ast.Ident)
	if !ok || !isNil(info, y) {
		return 0
	}
	obj := info.Uses[id]
	switch {
	case obj != nil && obj == errObj && b.Op == token.NEQ, obj != nil && obj == t && b.Op == token.EQL:
		return 1
	case obj != nil && obj == errObj && b.Op == token.EQL, obj != nil && obj == t && b.Op == token.NEQ:
		return -1
	}
	return 0
}

// mayReturn tells the CFG builder which calls never return: panic and the
// usual exits, so that their paths are not taken for returns.
func (c *checker) mayReturn(call *ast.CallExpr) bool {
	if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok && id.Name == "panic" {
		if _, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); ok {
			return false
		}
	}
	fn := callee(c.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil {
		return true
	}
	switch fn.Pkg().Path() + "." + fn.Name() {
	case "os.Exit", "log.Fatal", "log.Fatalf", "log.Fatalln", "log.Panic", "log.Panicf", "log.Panicln":
		return false
	}
	switch fn.Name() {
	case "Fatal", "Fatalf", "FailNow", "Skip", "Skipf", "SkipNow":
		return recvName(fn) == "" // testing.T's, zap.Logger's do not return
	}
	return true
}
