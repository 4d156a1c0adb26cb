// Package generics uses instantiated generic types in signatures.
package generics

import (
	"context"

	"github.com/txkit/txkit/cmd/txdecorate/testdata/corpus/tx"
)

// Page is a generic type of this package.
type Page[T any] struct {
	Items []T
	Next  string
}

// Pair is a generic type of two parameters.
type Pair[K comparable, V any] struct {
	K K
	V V
}

// Service is decorated.
type Service interface {
	List(ctx context.Context, after string) (Page[string], error)
	Pairs(ctx context.Context, in map[string]Pair[string, tx.Box[int]]) ([]Pair[int, string], error)
	Func(ctx context.Context, f func(Page[int]) bool) (chan<- Page[int], error)
}
