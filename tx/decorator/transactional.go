package decorator

import (
	"context"

	"github.com/txkit/txkit/tx"
)

// Transactional returns fn wrapped so that each call runs in a transaction
// of r, with opts: it joins the transaction in ctx or starts one (see
// [tx.Do] and [tx.WithPropagation]). The transaction is named after fn
// unless opts include [tx.WithName]. It panics if fn is nil.
func Transactional[T any](r *tx.Runner, fn func(ctx context.Context) (T, error), opts ...tx.Option) func(ctx context.Context) (T, error) {
	opts = withName(fn, opts)
	return func(ctx context.Context) (T, error) {
		return tx.Do(ctx, r, fn, opts...)
	}
}

// Transactional1 is [Transactional] for a function of one argument.
func Transactional1[A, T any](r *tx.Runner, fn func(ctx context.Context, a A) (T, error), opts ...tx.Option) func(ctx context.Context, a A) (T, error) {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A) (T, error) {
		return tx.Do(ctx, r, func(ctx context.Context) (T, error) { return fn(ctx, a) }, opts...)
	}
}

// Transactional2 is [Transactional] for a function of two arguments.
func Transactional2[A, B, T any](r *tx.Runner, fn func(ctx context.Context, a A, b B) (T, error), opts ...tx.Option) func(ctx context.Context, a A, b B) (T, error) {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B) (T, error) {
		return tx.Do(ctx, r, func(ctx context.Context) (T, error) { return fn(ctx, a, b) }, opts...)
	}
}

// Transactional3 is [Transactional] for a function of three arguments.
func Transactional3[A, B, C, T any](r *tx.Runner, fn func(ctx context.Context, a A, b B, c C) (T, error), opts ...tx.Option) func(ctx context.Context, a A, b B, c C) (T, error) {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B, c C) (T, error) {
		return tx.Do(ctx, r, func(ctx context.Context) (T, error) { return fn(ctx, a, b, c) }, opts...)
	}
}

// TransactionalErr is [Transactional] for a function that returns only an
// error.
func TransactionalErr(r *tx.Runner, fn func(ctx context.Context) error, opts ...tx.Option) func(ctx context.Context) error {
	opts = withName(fn, opts)
	return func(ctx context.Context) error {
		return r.Run(ctx, fn, opts...)
	}
}

// TransactionalErr1 is [TransactionalErr] for a function of one argument.
func TransactionalErr1[A any](r *tx.Runner, fn func(ctx context.Context, a A) error, opts ...tx.Option) func(ctx context.Context, a A) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A) error {
		return r.Run(ctx, func(ctx context.Context) error { return fn(ctx, a) }, opts...)
	}
}

// TransactionalErr2 is [TransactionalErr] for a function of two arguments.
func TransactionalErr2[A, B any](r *tx.Runner, fn func(ctx context.Context, a A, b B) error, opts ...tx.Option) func(ctx context.Context, a A, b B) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B) error {
		return r.Run(ctx, func(ctx context.Context) error { return fn(ctx, a, b) }, opts...)
	}
}

// TransactionalErr3 is [TransactionalErr] for a function of three
// arguments.
func TransactionalErr3[A, B, C any](r *tx.Runner, fn func(ctx context.Context, a A, b B, c C) error, opts ...tx.Option) func(ctx context.Context, a A, b B, c C) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B, c C) error {
		return r.Run(ctx, func(ctx context.Context) error { return fn(ctx, a, b, c) }, opts...)
	}
}
