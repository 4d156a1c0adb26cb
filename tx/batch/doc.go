// Package batch runs a list of steps as one all-or-nothing unit: one
// MongoDB transaction, through a [tx.Runner].
//
//	e := batch.NewExecutor(runner, tx.WithName("refund"))
//	err := e.Execute(ctx,
//		batch.Step{Name: "credit", Run: credit},
//		batch.Step{Name: "log", Run: writeLog},
//	)
//
// # Semantics
//
// The steps run in order, each with the transaction's ctx. The first step
// that fails aborts the transaction, and [Executor.Execute] returns a
// [*StepError] that says which step failed and unwraps to its error; no
// later step runs. When MongoDB reports a transient error, the runner
// retries the whole batch from the first step, so steps must be
// re-runnable (see [tx.Runner.Run]).
//
// Before each step, the batch checks its ctx: once it is done, no further
// step starts, the transaction is rolled back, and Execute returns a
// [*StoppedError] naming the first step that did not run.
//
// A batch whose ctx already carries a transaction joins it, as any scope
// with the default propagation does; the options given to [NewExecutor]
// ([tx.WithPropagation], [tx.WithTimeout], …) apply to every batch it runs.
// Those that belong to whoever starts the transaction ([tx.WithMaxAttempts],
// [tx.WithBackoff], [tx.WithTransactionOptions]) apply only when the batch
// starts it: a batch that joins ignores them, as every joining scope does,
// unless [tx.WithStrictJoin] makes a difference an error.
//
// # Why steps never run concurrently
//
// All steps share one session, and a MongoDB session is not safe for
// concurrent use: the driver's operations on it would race, and the server
// requires the statements of a transaction to arrive one at a time, in
// order. Running the steps of one batch in parallel would gain nothing
// either, since the server executes a transaction's operations serially.
// To do independent work concurrently, run independent batches, each in
// its own transaction.
//
// # Observing steps
//
// Every step runs as a scope of its own that joins the batch's
// transaction, so the runner's [tx.Observer] sees each one begin and end
// ([tx.EventBegin], then [tx.EventEnd] or [tx.EventRollbackOnly]) with its
// duration. Its [tx.Event.Name] is "step <index> <name>", e.g.
// "step 1 debit".
package batch
