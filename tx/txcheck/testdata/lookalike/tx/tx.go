// Package tx is not txkit's tx: a package of the same name, with the same
// method names, that txcheck must leave alone.
package tx

import "context"

type Runner struct{}

func (r *Runner) Run(ctx context.Context, fn func(ctx context.Context) error) error { return fn(ctx) }

type Tx struct{}

func (r *Runner) Begin(ctx context.Context) (context.Context, *Tx, error) { return ctx, &Tx{}, nil }

func (t *Tx) Commit(ctx context.Context) error { return nil }

func AfterCommit(ctx context.Context, fn func(context.Context)) { fn(ctx) }
