// Package directives places directives everywhere they may go, and sets
// interface defaults that some methods cannot use.
package directives

import "context"

// Service is decorated. Its defaults apply to the methods that start a
// transaction of their own; the others leave them out.
//
//txkit:max_attempts=3
//txkit:timeout=2s
type Service interface {
	Base

	// Default starts or joins a transaction with the defaults.
	Default(ctx context.Context) error

	// Joiner always joins: the attempt limit does not apply, the timeout
	// bounds its callback.
	//
	//txkit:propagation=mandatory
	Joiner(ctx context.Context) error

	// Outside runs outside any transaction, bounded by the timeout.
	//
	//txkit:propagation=not_supported
	Outside(ctx context.Context) (int, error)

	// Maybe joins or runs without a transaction.
	//
	//txkit:propagation=supports
	//txkit:timeout=1s
	Maybe(ctx context.Context) error

	// Own starts its own transaction with its own limits.
	//
	//txkit:propagation=requires_new
	//txkit:max_attempts=7
	Own(ctx context.Context) error

	Line(ctx context.Context) error //txkit:name=svc.line

	// Skip passes through.
	//
	//txkit:none
	Skip(ctx context.Context) error
}

// Base is embedded by Service; its directives count.
type Base interface {
	// Refuse never runs in a transaction.
	//
	//txkit:propagation=never
	Refuse(ctx context.Context) error
}

// Plain has no directives: options are only emitted when a directive
// sets them.
type Plain interface {
	Do(ctx context.Context) error
}
