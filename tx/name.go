package tx

import (
	"runtime"

	"github.com/txkit/txkit/internal/funcname"
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

// scopeName returns name, or the short name of the function at pc, e.g.
// "credits.(*Service).Deduct" for a call inside
// github.com/txkit/txkit/modules/credits.(*Service).Deduct.
func scopeName(name string, pc uintptr) string {
	if name != "" {
		return name
	}
	if n := funcname.ForPC(pc); n != "" {
		return n
	}
	return "tx"
}
