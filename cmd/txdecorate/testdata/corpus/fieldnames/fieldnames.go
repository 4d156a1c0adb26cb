// Package fieldnames has methods named like the generated struct's fields.
package fieldnames

import "context"

// Iterator is decorated.
type Iterator interface {
	next(ctx context.Context) (int, error)
	runner() string
	Next(ctx context.Context) error
}
