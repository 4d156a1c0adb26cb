// Package generic declares generic interfaces.
package generic

import "context"

// Repo is a generic interface of two type parameters.
//
//txkit:max_attempts=2
type Repo[T any, K comparable] interface {
	Get(ctx context.Context, id K) (T, error)
	Put(ctx context.Context, v T) error
	All(ctx context.Context, keys ...K) (map[K]T, int, error)
	Len() int
}

// Named has type parameters named like the generated code's packages and
// locals.
type Named[tx any, d interface{ ~int | ~string }, context any] interface {
	Get(ctx Ctx, v d) (tx, error)
	Put(ctx Ctx, v context) error
}

// Ctx is context.Context, for Named, whose type parameter hides the
// package's name.
type Ctx = context.Context
