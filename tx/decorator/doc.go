// Package decorator makes functions and services transactional without
// touching their bodies: the declarative face of package tx.
//
// # Functions
//
// [Transactional] and its siblings wrap a function whose first parameter is
// a context.Context and whose last result is an error. The wrapper has the
// wrapped function's signature, so it drops in wherever the original was
// used; each call runs through a [tx.Runner] with the options given when
// wrapping:
//
//	deduct := decorator.Transactional2(runner, repo.Deduct,
//		tx.WithTimeout(2*time.Second))
//	balance, err := deduct(ctx, "alice", 50) // one transaction per call
//
// A call whose ctx already carries a transaction joins it (the default
// propagation, [tx.Required]); [tx.WithPropagation] changes that. The
// transaction is named after the wrapped function (e.g.
// "credits.(*Repo).Deduct") unless [tx.WithName] says otherwise.
//
// The wrapped function must use the ctx it is given for every collection
// call, since that ctx carries the session, and must be re-runnable: the
// runner runs it again when MongoDB reports a transient error.
//
// There is one wrapper per shape of function:
//
//   - (T, error) results: [Transactional], [Transactional1],
//     [Transactional2], [Transactional3] for zero to three arguments
//     after ctx;
//   - an error result only: [TransactionalErr], [TransactionalErr1],
//     [TransactionalErr2], [TransactionalErr3].
//
// # Interfaces
//
// To make every method of a service transactional, generate a decorator
// with cmd/txdecorate and install it with fx.Decorate; see
// docs/decorators.md.
package decorator
