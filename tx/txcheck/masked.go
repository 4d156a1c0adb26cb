package txcheck

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/cfg"
)

// checkMasked reports, in each re-runnable callback, the driver calls whose
// ctx the callback cut (context.WithTimeout, WithCancel…) and whose error
// does not reach the callback's return. If that ctx cuts a statement after
// it was sent and it was the transaction's first, the statement may reach
// the server after the runner's abort and start the transaction there; the
// runner reaps the session only when the callback's error shows a context,
// timeout or network error (finding tx-attack24-derived-ctx-masked).
func (c *checker) checkMasked() {
	for _, s := range c.scopes {
		if s.lit == nil || !s.rerun || s.ctx == nil || !returnsError(c.pass.TypesInfo, s.lit) {
			continue
		}
		m := &masking{checker: c, s: s}
		m.check()
	}
}

// returnsError reports whether lit's last result is an error.
func returnsError(info *types.Info, lit *ast.FuncLit) bool {
	sig, ok := info.TypeOf(lit).(*types.Signature)
	if !ok || sig.Results().Len() == 0 {
		return false
	}
	return types.Identical(sig.Results().At(sig.Results().Len()-1).Type(), types.Universe.Lookup("error").Type())
}

// masking checks one callback. Its statements are followed in the
// callback's control-flow graph, built on first use: which assignments of a
// ctx variable reach a call.
type masking struct {
	*checker
	s      *scope
	graph  *cfg.CFG
	preds  map[*cfg.Block][]*cfg.Block
	ranged map[*ast.Ident]bool   // range keys and values: assigned, untraceably
	unsure map[types.Object]bool // assigned in a nested function literal, or addressed
	early  map[types.Object]bool // cancel functions looked at: may they cut a statement in flight?

	// What is known of each assignment of a ctx variable, grown in rounds
	// up to a fixed point (see assigned).
	known   map[maskDef]derivation
	done    map[maskDef]int  // the round that last derived it
	busy    map[maskDef]bool // being derived: round a loop
	round   int
	changed bool // something known grew in this round
}

// A maskDef is an assignment (or declaration, or range) of a variable.
type maskDef struct {
	obj  types.Object
	node ast.Node
}

// check looks at every statement list of the callback, not at those of
// function literals in it (a nested callback is a scope of its own; a
// helper closure's error goes to its own return).
func (m *masking) check() {
	ast.Inspect(m.s.lit.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.BlockStmt:
			m.list(n.List)
		case *ast.CaseClause:
			m.list(n.Body)
		case *ast.CommClause:
			m.list(n.Body)
		case *ast.IfStmt:
			if as, ok := n.Init.(*ast.AssignStmt); ok {
				m.ifAfter(as, n)
			}
		}
		return true
	})
}

// list checks the calls that are statements of stmts, or assigned by one.
func (m *masking) list(stmts []ast.Stmt) {
	for i, st := range stmts {
		for {
			l, ok := st.(*ast.LabeledStmt)
			if !ok {
				break
			}
			st = l.Stmt
		}
		switch st := st.(type) {
		case *ast.ExprStmt:
			if call, name, _, ok := m.driverCall(st.X); ok {
				m.maybeReport(call, name)
			}
		case *ast.AssignStmt:
			m.ifAfter(st, m.nextIf(stmts[i+1:], st))
		}
	}
}

// nextIf returns the if statement that follows as, past simple statements
// that do not mention the variable as assigns the error to (a cancel()
// after a per-statement timeout), or nil.
func (m *masking) nextIf(rest []ast.Stmt, as *ast.AssignStmt) *ast.IfStmt {
	if len(as.Lhs) == 0 {
		return nil
	}
	id, ok := as.Lhs[len(as.Lhs)-1].(*ast.Ident)
	if !ok || id.Name == "_" {
		return nil
	}
	for _, st := range rest {
		switch st := st.(type) {
		case *ast.IfStmt:
			return st
		case *ast.ExprStmt, *ast.AssignStmt, *ast.DeclStmt, *ast.DeferStmt, *ast.IncDecStmt, *ast.EmptyStmt:
			if mentionsName(st, id.Name) {
				return nil
			}
		default:
			return nil
		}
	}
	return nil
}

// ifAfter checks a call assigned by as: its error discarded with _, or
// tested by next (nil if none) whose branch returns without it.
func (m *masking) ifAfter(as *ast.AssignStmt, next *ast.IfStmt) {
	if len(as.Rhs) != 1 || (as.Tok != token.DEFINE && as.Tok != token.ASSIGN) {
		return
	}
	call, name, results, ok := m.driverCall(as.Rhs[0])
	if !ok || results != len(as.Lhs) {
		return
	}
	id, ok := as.Lhs[len(as.Lhs)-1].(*ast.Ident)
	if !ok {
		return
	}
	if id.Name == "_" {
		m.maybeReport(call, name)
		return
	}
	errObj := m.pass.TypesInfo.ObjectOf(id)
	if next == nil || errObj == nil || (next.Init != nil && next.Init != ast.Stmt(as)) || !m.isNotNil(next.Cond, errObj) {
		return
	}
	if m.drops(next.Body, errObj) {
		m.maybeReport(call, name)
	}
}

// driverCall returns the driver call whose error e is: a call of a method
// of the driver's Client, Database, Collection, IndexView or
// SearchIndexView whose last result is an error, or a method of the
// SingleResult or DistinctResult such a call returns
// (FindOne(…).Decode(&v), Distinct(…).Decode(&v)). A cursor's
// calls follow the statement that opened the cursor: they never start a
// transaction and are left out. results is how many results e has.
func (m *masking) driverCall(e ast.Expr) (call *ast.CallExpr, name string, results int, ok bool) {
	outer, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok {
		return nil, "", 0, false
	}
	results, ok = errorResults(m.pass.TypesInfo, outer)
	if !ok {
		return nil, "", 0, false
	}
	if name, ok := m.isDriver(outer); ok {
		return outer, name, results, true
	}
	sel, ok := ast.Unparen(outer.Fun).(*ast.SelectorExpr)
	if !ok {
		return nil, "", 0, false
	}
	inner, ok := ast.Unparen(sel.X).(*ast.CallExpr)
	if !ok {
		return nil, "", 0, false
	}
	if t := m.pass.TypesInfo.TypeOf(inner); t == nil || (!isNamed(t, mongoPath, "SingleResult") && !isNamed(t, mongoPath, "DistinctResult")) {
		return nil, "", 0, false
	}
	if name, ok := m.isDriver(inner); ok {
		return inner, name, results, true
	}
	return nil, "", 0, false
}

// errorResults returns how many results call has, if its last is an error.
func errorResults(info *types.Info, call *ast.CallExpr) (int, bool) {
	t := info.TypeOf(call)
	if t == nil {
		return 0, false
	}
	var last types.Type
	n := 1
	if tuple, ok := t.(*types.Tuple); ok {
		if tuple.Len() == 0 {
			return 0, false
		}
		n, last = tuple.Len(), tuple.At(tuple.Len()-1).Type()
	} else {
		last = t
	}
	return n, types.Identical(last, types.Universe.Lookup("error").Type())
}

// isDriver reports whether call is a driver method that may start a
// transaction on the server, and names it.
func (m *masking) isDriver(call *ast.CallExpr) (string, bool) {
	fn := callee(m.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != mongoPath || len(call.Args) == 0 {
		return "", false
	}
	sig := fn.Type().(*types.Signature)
	if sig.Params().Len() == 0 || !isContext(sig.Params().At(0).Type()) {
		return "", false
	}
	switch recv := recvName(fn); recv {
	case "", "Session", "Cursor", "ChangeStream":
		return "", false
	default:
		return recv + "." + fn.Name(), true
	}
}

func (m *masking) maybeReport(call *ast.CallExpr, name string) {
	cut := m.deriveFully(call.Args[0]).cut
	if cut == "" {
		return
	}
	m.report(analysis.Diagnostic{
		Pos: call.Pos(),
		End: call.End(),
		Message: fmt.Sprintf("the error of %s, cut by the ctx of %s, does not reach the %s's return: "+
			"if that ctx cuts it, the statement may still reach the server and hold what it writes until the transaction lifetime limit; "+
			"return the error or wrap it with %%w", name, cut, m.s.kind),
	})
}

// isNotNil reports whether cond is err != nil (or nil != err).
func (m *masking) isNotNil(cond ast.Expr, errObj types.Object) bool {
	b, ok := ast.Unparen(cond).(*ast.BinaryExpr)
	if !ok || b.Op != token.NEQ {
		return false
	}
	x, y := ast.Unparen(b.X), ast.Unparen(b.Y)
	if isNil(m.pass.TypesInfo, x) {
		x, y = y, x
	}
	id, ok := x.(*ast.Ident)
	return ok && isNil(m.pass.TypesInfo, y) && m.pass.TypesInfo.Uses[id] == errObj
}

// drops reports whether the branch body, run when errObj is not nil, ends
// in a return of the callback and none of its returns carries errObj (nor
// a ctx's own error: finding txcheck-attack28-ctx-err). It says no when it
// cannot tell: errObj tested, assigned, stored or shadowed in the branch,
// or a return whose error it cannot read. errObj may be passed to calls
// that are statements (logging); then no return may mention a local
// variable, which such a call might have set.
func (m *masking) drops(body *ast.BlockStmt, errObj types.Object) bool {
	if len(body.List) == 0 {
		return false
	}
	ret, ok := body.List[len(body.List)-1].(*ast.ReturnStmt)
	sig := m.pass.TypesInfo.TypeOf(m.s.lit).(*types.Signature)
	if !ok || len(ret.Results) != sig.Results().Len() {
		return false // a bare return of named results, or return f()
	}
	info := m.pass.TypesInfo
	clear, logged := true, false
	var stack []ast.Node
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		id, ok := n.(*ast.Ident)
		if !ok {
			return true
		}
		obj := info.ObjectOf(id)
		if v, ok := obj.(*types.Var); ok && obj != errObj && !v.IsField() && id.Name == errObj.Name() {
			clear = false // shadowed
		}
		if obj != errObj {
			return true
		}
		switch where(stack) {
		case inReturn:
		case inLogCall:
			logged = true
		default:
			clear = false
		}
		return true
	})
	if !clear {
		return false
	}
	dropped := true
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt:
			if len(n.Results) != sig.Results().Len() {
				dropped = false
				return false
			}
			last := n.Results[len(n.Results)-1]
			if m.carries(last, errObj) || (logged && m.mentionsLocal(last, errObj)) {
				dropped = false
			}
			return false
		}
		return dropped
	})
	return dropped
}

type place uint8

const (
	elsewhere place = iota
	inReturn        // in a return of the callback
	inLogCall       // an argument of a call that is a statement, not addressed
)

// where tells where the node on top of stack is.
func where(stack []ast.Node) place {
	for i := len(stack) - 2; i >= 0; i-- {
		switch n := stack[i].(type) {
		case *ast.FuncLit:
			return elsewhere
		case *ast.UnaryExpr:
			if n.Op == token.AND {
				return elsewhere
			}
		case *ast.ReturnStmt:
			return inReturn
		case *ast.ExprStmt:
			if call, ok := n.X.(*ast.CallExpr); ok && i+1 < len(stack) && stack[i+1] == ast.Node(call) && i+2 < len(stack) {
				for _, a := range call.Args {
					if stack[i+2] == ast.Node(a) {
						return inLogCall
					}
				}
			}
			return elsewhere
		case ast.Stmt:
			return elsewhere
		}
	}
	return elsewhere
}

// carries reports whether the error expression e may carry errObj in its
// chain: it mentions it, other than formatted without %w by fmt.Errorf or
// as err.Error(). A ctx's own error (ctx.Err(), context.Cause(ctx)) counts
// too: if that ctx cut the statement, the runner sees the cut.
func (m *masking) carries(e ast.Expr, errObj types.Object) bool {
	info := m.pass.TypesInfo
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if found {
			return false
		}
		switch n := n.(type) {
		case *ast.Ident:
			found = info.Uses[n] == errObj
		case *ast.CallExpr:
			if wrapped, ok := m.errorfWraps(n); ok {
				for i, a := range n.Args[1:] {
					if wrapped[i] && m.carries(a, errObj) {
						found = true
					}
				}
				return false
			}
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok && sel.Sel.Name == "Error" && len(n.Args) == 0 {
				if id, ok := ast.Unparen(sel.X).(*ast.Ident); ok && info.Uses[id] == errObj {
					return false // a string, not the error
				}
			}
			if ctxError(info, n) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// ctxError reports whether call is ctx.Err() or context.Cause(ctx) of a
// context.Context.
func ctxError(info *types.Info, call *ast.CallExpr) bool {
	fn := callee(info, call)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != "context" {
		return false
	}
	switch fn.Name() {
	case "Cause":
		return recvName(fn) == ""
	case "Err":
		sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
		if !ok {
			return false
		}
		t := info.TypeOf(sel.X)
		return t != nil && isContext(t)
	}
	return false
}

// errorfWraps tells, for a call of fmt.Errorf with a constant format, which
// of its arguments the format wraps with %w. ok is false for any other
// call, or a format it cannot read (argument indexes, * widths, a count of
// verbs other than of arguments).
func (m *masking) errorfWraps(call *ast.CallExpr) (wrapped []bool, ok bool) {
	fn := callee(m.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != "fmt" || fn.Name() != "Errorf" || len(call.Args) == 0 || call.Ellipsis.IsValid() {
		return nil, false
	}
	tv, found := m.pass.TypesInfo.Types[call.Args[0]]
	if !found || tv.Value == nil || tv.Value.Kind() != constant.String {
		return nil, false
	}
	format := constant.StringVal(tv.Value)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.", format[i]) >= 0 {
			i++
		}
		if i == len(format) {
			return nil, false
		}
		switch format[i] {
		case '%':
			continue
		case '*', '[':
			return nil, false
		}
		wrapped = append(wrapped, format[i] == 'w')
	}
	return wrapped, len(wrapped) == len(call.Args)-1
}

// mentionsLocal reports whether e mentions a variable of a function other
// than errObj.
func (m *masking) mentionsLocal(e ast.Expr, errObj types.Object) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if v, ok := m.pass.TypesInfo.Uses[id].(*types.Var); ok && v != errObj && !v.IsField() && v.Parent() != v.Pkg().Scope() {
				found = true
			}
		}
		return !found
	})
	return found
}

// mentionsName reports whether n mentions an identifier called name.
func mentionsName(n ast.Node, name string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == name {
			found = true
		}
		return !found
	})
	return found
}

// A derivation is what txcheck knows of a ctx used in the callback, over
// the paths that reach the use.
type derivation struct {
	plain bool   // on some path, the callback's ctx, derived without a cut
	cut   string // on some path, cut inside the callback by this function
}

func (d derivation) fromScope() bool { return d.plain || d.cut != "" }

func (d derivation) or(o derivation) derivation {
	if d.cut == "" {
		d.cut = o.cut
	}
	d.plain = d.plain || o.plain
	return d
}

// deriveFully tells how the ctx e is derived from the callback's, once
// what is known of the assignments it depends on no longer grows.
func (m *masking) deriveFully(e ast.Expr) derivation {
	for {
		m.round++
		m.changed = false
		d := m.derive(e, 0)
		if !m.changed {
			return d
		}
	}
}

// derive tells how the ctx e is derived from the callback's.
func (m *masking) derive(e ast.Expr, depth int) derivation {
	if depth > maxDepth || e == nil {
		return derivation{}
	}
	info := m.pass.TypesInfo
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		obj, ok := info.Uses[e].(*types.Var)
		if !ok || !isContext(obj.Type()) {
			return derivation{}
		}
		return m.deriveVar(obj, e.Pos(), depth)
	case *ast.CallExpr:
		fn := callee(info, e)
		if fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == "context" {
			switch fn.Name() {
			case "Background", "TODO":
				return derivation{}
			case "WithTimeout", "WithDeadline", "WithTimeoutCause", "WithDeadlineCause":
				if len(e.Args) > 0 && m.derive(e.Args[0], depth+1).fromScope() {
					return derivation{cut: "context." + fn.Name()}
				}
				return derivation{}
			case "WithoutCancel":
				if len(e.Args) > 0 && m.derive(e.Args[0], depth+1).fromScope() {
					return derivation{plain: true}
				}
				return derivation{}
			}
		}
		tv, ok := info.Types[e.Fun]
		if !ok || !tv.IsValue() {
			return derivation{} // a conversion
		}
		sig, ok := tv.Type.Underlying().(*types.Signature)
		if !ok || sig.Results().Len() == 0 || !isContext(sig.Results().At(0).Type()) {
			return derivation{}
		}
		for _, a := range e.Args {
			if t := info.TypeOf(a); t != nil && isContext(t) {
				d := m.derive(a, depth+1)
				if fn != nil && m.detaches(fn) && d.fromScope() {
					return derivation{plain: true}
				}
				return d
			}
		}
	}
	return derivation{}
}

// detaches reports whether fn, a function of this package, calls
// context.WithoutCancel: its ctx may then outlive the cut of the one it
// was given.
func (m *masking) detaches(fn *types.Func) bool {
	decl := m.decls[fn]
	if decl == nil {
		return false
	}
	found := false
	ast.Inspect(decl.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if f := callee(m.pass.TypesInfo, call); f != nil && f.Pkg() != nil && f.Pkg().Path() == "context" && f.Name() == "WithoutCancel" {
				found = true
			}
		}
		return !found
	})
	return found
}

// deriveVar tells how the ctx variable obj, read at pos, is derived: from
// the assignments that reach pos in the callback's control flow.
func (m *masking) deriveVar(obj *types.Var, pos token.Pos, depth int) derivation {
	m.build()
	if m.unsure[obj] {
		return derivation{}
	}
	b, idx := m.locate(pos)
	if b == nil {
		return derivation{}
	}
	defs, entry := m.reaching(obj, b, idx)
	var d derivation
	if entry && obj == m.s.ctx {
		d.plain = true
	}
	for _, def := range defs {
		d = d.or(m.assigned(maskDef{obj, def}, depth+1))
	}
	return d
}

// assigned tells how the assignment def derives the ctx it gives its
// variable. An assignment is derived once a round and what it gave is kept:
// round a loop, or derived earlier in the round, it counts for what is
// known of it so far, and deriveFully runs rounds until that no longer
// grows. Following every path on its own instead took time exponential in
// the assignments a loop brings back (finding
// txcheck-attack28-loop-blowup). What is known only grows (a cut, once
// known, stays), so the rounds end.
func (m *masking) assigned(def maskDef, depth int) derivation {
	if m.busy[def] || m.done[def] == m.round {
		return m.known[def]
	}
	m.busy[def] = true
	d := m.known[def].or(m.deriveDef(def.obj, def.node, depth))
	delete(m.busy, def)
	m.done[def] = m.round
	if d != m.known[def] {
		m.known[def] = d
		m.changed = true
	}
	return d
}

// deriveDef tells how the assignment def derives the ctx it gives obj.
func (m *masking) deriveDef(obj types.Object, def ast.Node, depth int) derivation {
	if id, ok := def.(*ast.Ident); ok && m.ranged[id] {
		return derivation{}
	}
	info := m.pass.TypesInfo
	var lhs []*ast.Ident
	var rhs []ast.Expr
	switch def := def.(type) {
	case *ast.AssignStmt:
		for _, l := range def.Lhs {
			id, _ := ast.Unparen(l).(*ast.Ident)
			lhs = append(lhs, id)
		}
		rhs = def.Rhs
	case *ast.ValueSpec: // the graph holds a var declaration's specs
		lhs, rhs = def.Names, def.Values
	default:
		return derivation{}
	}
	for i, id := range lhs {
		if id == nil || info.ObjectOf(id) != obj {
			continue
		}
		switch {
		case len(rhs) == len(lhs):
			return m.derive(rhs[i], depth)
		case len(rhs) == 1 && i == 0:
			d := m.derive(rhs[0], depth)
			if len(lhs) > 1 && d.fromScope() {
				if name := m.cancelledEarly(rhs[0], lhs[1]); name != "" {
					return derivation{cut: "context." + name}
				}
			}
			return d
		}
		return derivation{} // var ctx context.Context, or untraceable
	}
	return derivation{}
}

func specDefines(info *types.Info, vs *ast.ValueSpec, obj types.Object) bool {
	for _, id := range vs.Names {
		if info.Defs[id] == obj {
			return true
		}
	}
	return false
}

// cancelledEarly tells whether rhs is context.WithCancel (or
// WithCancelCause) whose cancel function, cancel, may be called while a
// statement of the callback runs: in a function literal (a goroutine,
// context.AfterFunc) or passed on as a value. It names the function if
// so, else returns "". The callback's own calls of cancel, deferred or
// not, cannot cut a statement in flight.
func (m *masking) cancelledEarly(rhs ast.Expr, cancel *ast.Ident) string {
	call, ok := ast.Unparen(rhs).(*ast.CallExpr)
	if !ok || cancel == nil || cancel.Name == "_" {
		return ""
	}
	fn := callee(m.pass.TypesInfo, call)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != "context" || (fn.Name() != "WithCancel" && fn.Name() != "WithCancelCause") {
		return ""
	}
	obj := m.pass.TypesInfo.ObjectOf(cancel)
	if obj == nil || !m.s.contains(obj.Pos()) {
		return "" // declared outside the callback: its uses are not all here
	}
	if m.early[obj] {
		return fn.Name()
	}
	if _, ok := m.early[obj]; ok {
		return ""
	}
	early := false
	var stack []ast.Node
	ast.Inspect(m.s.lit.Body, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		id, ok := n.(*ast.Ident)
		if !ok || m.pass.TypesInfo.Uses[id] != obj || len(stack) < 2 {
			return true
		}
		switch p := stack[len(stack)-2].(type) {
		case *ast.CallExpr:
			if p.Fun == ast.Expr(id) && len(stack) >= 3 && !insideLit(stack) {
				switch stack[len(stack)-3].(type) {
				case *ast.ExprStmt, *ast.DeferStmt:
					return true
				}
			}
		case *ast.AssignStmt:
			for _, l := range p.Lhs {
				if l == ast.Expr(id) {
					return true
				}
			}
		}
		early = true
		return true
	})
	m.early[obj] = early
	if early {
		return fn.Name()
	}
	return ""
}

// insideLit reports whether a function literal is on stack, other than
// one deferred as is (defer func() { cancel() }() runs at the return too).
func insideLit(stack []ast.Node) bool {
	for i, n := range stack {
		lit, ok := n.(*ast.FuncLit)
		if !ok {
			continue
		}
		if i >= 2 {
			if call, ok := stack[i-1].(*ast.CallExpr); ok && call.Fun == ast.Expr(lit) {
				if _, ok := stack[i-2].(*ast.DeferStmt); ok {
					continue
				}
			}
		}
		return true
	}
	return false
}

// build builds the callback's control-flow graph and what the
// reaching-assignment search needs.
func (m *masking) build() {
	if m.graph != nil {
		return
	}
	m.graph = cfg.New(m.s.lit.Body, m.mayReturn)
	m.preds = make(map[*cfg.Block][]*cfg.Block)
	for _, b := range m.graph.Blocks {
		for _, s := range b.Succs {
			m.preds[s] = append(m.preds[s], b)
		}
	}
	m.ranged = make(map[*ast.Ident]bool)
	m.unsure = make(map[types.Object]bool)
	m.known = make(map[maskDef]derivation)
	m.done = make(map[maskDef]int)
	m.busy = make(map[maskDef]bool)
	m.early = make(map[types.Object]bool)
	info := m.pass.TypesInfo
	lits := 0
	var stack []ast.Node
	ast.Inspect(m.s.lit.Body, func(n ast.Node) bool {
		if n == nil {
			if _, ok := stack[len(stack)-1].(*ast.FuncLit); ok {
				lits--
			}
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *ast.FuncLit:
			lits++
		case *ast.RangeStmt:
			for _, e := range []ast.Expr{n.Key, n.Value} {
				if id, ok := e.(*ast.Ident); ok {
					m.ranged[id] = true
				}
			}
		case *ast.AssignStmt:
			if lits > 0 {
				for _, l := range n.Lhs {
					if id, ok := ast.Unparen(l).(*ast.Ident); ok {
						if obj := info.ObjectOf(id); obj != nil && !m.declaredIn(obj, stack) {
							m.unsure[obj] = true
						}
					}
				}
			}
		case *ast.UnaryExpr:
			if id, ok := ast.Unparen(n.X).(*ast.Ident); ok && n.Op == token.AND {
				if obj := info.ObjectOf(id); obj != nil {
					m.unsure[obj] = true
				}
			}
		}
		return true
	})
}

// declaredIn reports whether obj is declared in the innermost function
// literal on stack.
func (m *masking) declaredIn(obj types.Object, stack []ast.Node) bool {
	for i := len(stack) - 1; i >= 0; i-- {
		if lit, ok := stack[i].(*ast.FuncLit); ok {
			return lit.Pos() <= obj.Pos() && obj.Pos() < lit.End()
		}
	}
	return false
}

// locate returns the node of the graph that holds pos: its block and
// index.
func (m *masking) locate(pos token.Pos) (*cfg.Block, int) {
	var (
		best  *cfg.Block
		idx   int
		width token.Pos
	)
	for _, b := range m.graph.Blocks {
		for i, n := range b.Nodes {
			if n.Pos() <= pos && pos < n.End() && (best == nil || n.End()-n.Pos() < width) {
				best, idx, width = b, i, n.End()-n.Pos()
			}
		}
	}
	return best, idx
}

// reaching returns the assignments of obj that reach the node idx of b,
// and whether a path from the callback's start reaches it without one.
func (m *masking) reaching(obj types.Object, b *cfg.Block, idx int) (defs []ast.Node, entry bool) {
	seen := make(map[*cfg.Block]bool)
	found := make(map[ast.Node]bool)
	var walk func(b *cfg.Block, end int)
	walk = func(b *cfg.Block, end int) {
		for i := end - 1; i >= 0; i-- {
			if n := b.Nodes[i]; m.defines(n, obj) {
				if !found[n] {
					found[n] = true
					defs = append(defs, n)
				}
				return
			}
		}
		if b == m.graph.Blocks[0] {
			entry = true
		}
		for _, p := range m.preds[b] {
			if !seen[p] {
				seen[p] = true
				walk(p, len(p.Nodes))
			}
		}
	}
	walk(b, idx)
	return defs, entry
}

// defines reports whether the graph node n assigns obj (not in a function
// literal in it).
func (m *masking) defines(n ast.Node, obj types.Object) bool {
	if id, ok := n.(*ast.Ident); ok {
		return m.ranged[id] && m.pass.TypesInfo.ObjectOf(id) == obj
	}
	info := m.pass.TypesInfo
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN || n.Tok == token.DEFINE {
				for _, l := range n.Lhs {
					if id, ok := ast.Unparen(l).(*ast.Ident); ok && info.ObjectOf(id) == obj {
						found = true
					}
				}
			}
		case *ast.ValueSpec:
			found = found || specDefines(info, n, obj)
		}
		return !found
	})
	return found
}
