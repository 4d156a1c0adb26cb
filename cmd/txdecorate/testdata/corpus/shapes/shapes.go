// Package shapes has variadics, named results and results that clash with
// the names the generated code uses.
package shapes

import "context"

// Service is decorated.
type Service interface {
	// Variadic with a named result.
	Sum(ctx context.Context, xs ...int) (total int, err error)
	// Named results named like the generated locals.
	Three(ctx context.Context, r0, z0 string) (r1 string, z1 int, err error)
	// A variadic of functions.
	Apply(ctx context.Context, fns ...func(context.Context) error) error
	// A variadic of interface{}.
	Log(ctx context.Context, format string, args ...any) error
	// Unnamed variadic.
	Ids(context.Context, ...string) error
}
