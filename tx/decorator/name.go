package decorator

import (
	"reflect"

	"github.com/txkit/txkit/internal/funcname"
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
	all = append(all, tx.WithName(funcname.Of(fn)))
	return append(all, opts...)
}
