package tx

import (
	"runtime"
	"strings"
	"sync"
)

// callerPC returns the program counter of the function skip frames above
// its caller (skip 0 = the caller of callerPC's caller). Resolving a PC to a
// name is slow, so that happens once per call site, in scopeName.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	if runtime.Callers(skip+3, pcs[:]) < 1 {
		return 0
	}
	return pcs[0]
}

var callerNames sync.Map // uintptr → string

// scopeName returns name, or the short name of the function at pc, e.g.
// "credits.(*Service).Deduct" for a call inside
// github.com/txkit/txkit/modules/credits.(*Service).Deduct.
func scopeName(name string, pc uintptr) string {
	if name != "" {
		return name
	}
	if pc == 0 {
		return "tx"
	}
	if n, ok := callerNames.Load(pc); ok {
		return n.(string)
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	n := shortFuncName(frame.Function)
	callerNames.Store(pc, n)
	return n
}

// shortFuncName turns "github.com/a/b/credits.(*Service).Deduct.func1" into
// "credits.(*Service).Deduct": the package path goes, and so do the
// suffixes the compiler gives closures, which name no one's code.
func shortFuncName(fn string) string {
	if fn == "" {
		return "tx"
	}
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	for {
		i := strings.LastIndexByte(fn, '.')
		if i < 0 || !isClosureSuffix(fn[i+1:]) {
			return fn
		}
		fn = fn[:i]
	}
}

// isClosureSuffix reports whether s is "func7", "gowrap2", "deferwrap1" or
// a bare number, as in "F.func1.2".
func isClosureSuffix(s string) bool {
	for _, p := range [...]string{"func", "gowrap", "deferwrap"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
