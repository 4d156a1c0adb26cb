// Package tx runs functions in MongoDB transactions: the TxRunner of txkit.
//
// A [Runner] wraps a *mongo.Client. [Runner.Run] (or [Do], for a result)
// starts a session and a transaction, hands fn a ctx that carries them,
// commits when fn returns nil and aborts otherwise:
//
//	runner := tx.NewRunner(client)
//	err := runner.Run(ctx, func(ctx context.Context) error {
//		if _, err := accounts.UpdateOne(ctx, filter, debit); err != nil {
//			return err
//		}
//		_, err := entries.InsertOne(ctx, entry)
//		return err
//	})
//
// Every collection call inside fn must receive fn's ctx: that is how the
// driver knows the call belongs to the transaction.
//
// # Nesting and propagation
//
// The transaction travels in ctx, so a function that calls Run from inside
// another Run joins the caller's transaction instead of starting its own
// (the default propagation, [Required]). [WithPropagation] chooses another
// behaviour: [RequiresNew], [Mandatory], [Never], [Supports],
// [NotSupported]; [Nested] is refused, since MongoDB has no savepoints. A
// joined scope that fails marks the transaction rollback-only, and the
// outermost scope then aborts and returns [ErrUnexpectedRollback] even if
// it ignored the inner error. Scopes join only transactions of their own
// client.
//
// # Retries
//
// The outermost scope follows MongoDB's convenient-transaction rules: it
// re-runs fn when an error carries the TransientTransactionError label
// (write conflicts, elections) and retries only the commit on
// UnknownTransactionCommitResult, with jittered exponential backoff, until
// [WithMaxAttempts] or the time budget ([WithTimeout], by default
// [DefaultRetryBudget]) runs out; then it returns a [*RetryError]. So fn
// must be re-runnable: no effects outside the transaction. Effects that
// must happen once, after the data is durable, go in [AfterCommit].
//
// # Guarantees
//
// A commit once sent is carried to an outcome on the runner's own budget,
// whatever the caller's ctx does; if the outcome cannot be learned, the
// error matches [ErrCommitUnknown], and no abort follows such a commit.
// Hooks ([AfterCommit], [BeforeCommit], [AfterCompletion]) run on the
// outermost caller's values, without deadlines or session. A transaction
// the caller started with the driver is joined and never ended by txkit; an
// idle session in ctx is used and left open. Scopes that join one
// transaction from several goroutines are serialised. A joining scope
// ignores owner-only options unless [WithStrictJoin] is given. A condition
// of your own that deserves another attempt is [Retryable].
//
// # Transactions left open
//
// A transaction the runner could not end (its abort or commit met a
// stalled database) is killed on the server by the runner's reaper as soon
// as the database answers (see [Runner.Close]). One left open by a process
// that died is killed by the next process, with [WithOrphanReaping]: the
// processes record their server sessions and keep leases in a shared
// collection.
//
// # Manual scopes
//
// [Runner.Begin] returns a [Tx] to end with [Tx.Commit] or [Tx.Rollback],
// for code that cannot be shaped as a callback. It cannot re-run your code
// on a transient error: [Tx.Commit] then returns [ErrTransient].
//
// # Observability
//
// Every scope reports its begin, retries, commit, abort and rollback-only
// marks to an [Observer], with its name (by default the calling function's,
// such as "credits.(*Service).Deduct"), attempt and duration.
// [NewZapObserver] logs them; [Module] does so with the application's
// logger.
//
// # Fx
//
// [Module] provides a *Runner for the graph's *mongo.Client (see package
// mongofx); [Defaults] sets its options.
//
// The guide, with the propagation table and the retry rules in full, is
// docs/transactions.md.
package tx
