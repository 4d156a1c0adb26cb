// Package funcname turns program counters and function values into the
// short names txkit gives transactions by default:
// "credits.(*Service).Deduct" for
// github.com/txkit/txkit/modules/credits.(*Service).Deduct.func1.
package funcname

import (
	"reflect"
	"runtime"
	"strings"
	"sync"
)

// callSites caches ForPC (return addresses), funcs caches Of (entry points).
var callSites, funcs sync.Map // uintptr → string

// ForPC returns the short name of the function at pc, or "" when pc is
// unknown. Resolving a PC is slow, so each is resolved once.
func ForPC(pc uintptr) string {
	if pc == 0 {
		return ""
	}
	if n, ok := callSites.Load(pc); ok {
		return n.(string)
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	n := Short(frame.Function)
	callSites.Store(pc, n)
	return n
}

// Of returns the short name of the function value fn ("" for nil).
func Of(fn any) string {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return ""
	}
	pc := v.Pointer()
	if n, ok := funcs.Load(pc); ok {
		return n.(string)
	}
	f := runtime.FuncForPC(pc)
	if f == nil {
		return ""
	}
	n := Short(f.Name())
	funcs.Store(pc, n)
	return n
}

// Short drops a full function name's package path and the suffixes the
// compiler gives closures and method values, which name no one's code.
func Short(fn string) string {
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	fn = strings.TrimSuffix(fn, "-fm")
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
