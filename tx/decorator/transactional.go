package decorator

import (
	"context"

	"github.com/txkit/txkit/tx"
)

// Transactional returns fn wrapped so that each call runs in a transaction
// of r, with opts: it joins the transaction in ctx or starts one (see
// [tx.Do] and [tx.WithPropagation]). The transaction is named after fn
// unless opts include [tx.WithName]. It panics if fn is nil.
//
// When fn calls [tx.SetRollbackOnly] in a transaction that the wrapper
// started, the transaction is rolled back and the wrapper returns the zero
// T and an error wrapping [tx.ErrUnexpectedRollback]: its caller never
// gets a result that was not committed. In a transaction it joined, the
// call returns normally and the transaction's owner gets that error.
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
//
// Like [Transactional], it returns an error wrapping
// [tx.ErrUnexpectedRollback] when fn called [tx.SetRollbackOnly] in a
// transaction that the wrapper started: nothing was committed, and a nil
// error would say otherwise.
func TransactionalErr(r *tx.Runner, fn func(ctx context.Context) error, opts ...tx.Option) func(ctx context.Context) error {
	opts = withName(fn, opts)
	return func(ctx context.Context) error {
		return run(ctx, r, fn, opts)
	}
}

// TransactionalErr1 is [TransactionalErr] for a function of one argument.
func TransactionalErr1[A any](r *tx.Runner, fn func(ctx context.Context, a A) error, opts ...tx.Option) func(ctx context.Context, a A) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A) error {
		return run(ctx, r, func(ctx context.Context) error { return fn(ctx, a) }, opts)
	}
}

// TransactionalErr2 is [TransactionalErr] for a function of two arguments.
func TransactionalErr2[A, B any](r *tx.Runner, fn func(ctx context.Context, a A, b B) error, opts ...tx.Option) func(ctx context.Context, a A, b B) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B) error {
		return run(ctx, r, func(ctx context.Context) error { return fn(ctx, a, b) }, opts)
	}
}

// TransactionalErr3 is [TransactionalErr] for a function of three
// arguments.
func TransactionalErr3[A, B, C any](r *tx.Runner, fn func(ctx context.Context, a A, b B, c C) error, opts ...tx.Option) func(ctx context.Context, a A, b B, c C) error {
	opts = withName(fn, opts)
	return func(ctx context.Context, a A, b B, c C) error {
		return run(ctx, r, func(ctx context.Context) error { return fn(ctx, a, b, c) }, opts)
	}
}

// run runs fn as [tx.Do] does, for a function without a result. Not
// [tx.Runner.Run]: when fn asks for a rollback with [tx.SetRollbackOnly]
// in the outermost scope, Run returns nil, which the wrapper's caller
// (who did not write fn) would take for a commit; Do returns
// [tx.ErrUnexpectedRollback].
func run(ctx context.Context, r *tx.Runner, fn func(ctx context.Context) error, opts []tx.Option) error {
	_, err := tx.Do(ctx, r, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	}, opts...)
	return err
}
