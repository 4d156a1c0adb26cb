// Package txcheck is a go/analysis analyzer for the transaction bugs that
// Go code on MongoDB really has. It knows the callbacks of txkit
// ([tx.Runner.Run], [tx.Do], the decorator.Transactional wrappers, batch
// steps), the region between [tx.Runner.Begin] and its Commit or Rollback,
// and the driver's own Session.WithTransaction, mongo.WithSession and
// Client.UseSession.
//
// # Checks
//
// Outer context: a database call (a method of the driver's Client,
// Database, Collection, Cursor, ChangeStream, IndexView or
// SearchIndexView; a txkit scope or hook) inside a transaction whose ctx is
// not the callback's ctx or derived from it, e.g. context.Background() or
// the ctx of the function around the callback. The call runs outside the
// transaction: it is neither isolated nor rolled back. A suggested fix
// passes the callback's ctx instead.
//
// Effects in a re-runnable callback: MongoDB's transient errors re-run a
// transaction callback, so an HTTP request, a send on a channel, or an
// append, ++, += or map write on a variable declared outside the callback
// happens once per attempt. A go statement that takes the transaction's ctx
// shares a session that is not safe for concurrent use. Bodies of
// [tx.AfterCommit] are exempt: they run once, after the commit.
//
// Manual scopes: a *tx.Tx from [tx.Runner.Begin] that is neither deferred
// to Rollback nor committed or rolled back on every path, and a Commit
// whose error is ignored.
//
// Masked cuts: in a re-runnable callback, a driver call whose ctx the
// callback derived with a cancel or a deadline (context.WithTimeout,
// WithCancel…) and whose error does not reach the callback's return: it is
// discarded, or the err != nil branch after the call returns another error
// (or wraps it without %w). If that ctx cuts the transaction's first
// statement after it was sent, the statement may start the transaction on
// the server after the runner's abort; the runner reaps the session only
// when the callback's error shows the cut.
//
// # Precision
//
// txcheck reports only what it can prove from the source of one package:
// a ctx it cannot trace (a parameter of a helper closure, a struct field, a
// function result) is trusted. A ctx is followed through local variables,
// through functions that take a ctx and return one (context.WithTimeout,
// context.WithValue, a tracer's Start), and through calls to functions and
// methods of the same package, to any depth, but not across packages.
// The masked-cut check follows a ctx through the callback's control flow
// and an error only to the if err != nil right after its call; an error
// given to a helper, stored or tested is trusted.
//
// A line that must do what txcheck reports can say so with a comment
// "//txcheck:ignore" and a reason, on that line or the line above.
package txcheck
