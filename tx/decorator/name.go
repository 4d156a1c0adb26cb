package decorator

import (
	"reflect"
	"runtime"
	"strings"

	"github.com/txkit/txkit/tx"
)

// withName returns opts preceded by a [tx.WithName] naming fn, so that an
// explicit WithName in opts still wins. The slice is new: the caller's
// backing array is never shared between wrappers. It panics if fn is nil,
// when the wrapper is made rather than at its first call.
func withName(fn any, opts []tx.Option) []tx.Option {
	v := reflect.ValueOf(fn)
	if v.IsNil() {
		panic("decorator: nil function")
	}
	all := make([]tx.Option, 0, len(opts)+1)
	all = append(all, tx.WithName(funcName(v.Pointer())))
	return append(all, opts...)
}

// funcName returns the short name of the function at pc, as package tx
// names scopes: "credits.(*Repo).Deduct" for a method value of
// github.com/txkit/txkit/modules/credits.(*Repo).Deduct. The suffixes the
// compiler gives closures and method values name no one's code and go.
func funcName(pc uintptr) string {
	f := runtime.FuncForPC(pc)
	if f == nil {
		return "tx"
	}
	name := f.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSuffix(name, "-fm") // a method value
	for {
		i := strings.LastIndexByte(name, '.')
		if i < 0 || !isClosureSuffix(name[i+1:]) {
			return name
		}
		name = name[:i]
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
