package tx

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNoTransaction is returned by a [Mandatory] scope whose ctx carries
	// no transaction.
	ErrNoTransaction = errors.New("tx: no transaction in context")

	// ErrTransactionExists is returned by a [Never] scope whose ctx carries
	// a transaction.
	ErrTransactionExists = errors.New("tx: transaction already in context")

	// ErrUnexpectedRollback is returned when the outermost scope tries to
	// commit a transaction that a joined inner scope marked rollback-only
	// (by failing, or by calling [SetRollbackOnly]). The transaction was
	// aborted: nothing of it was committed. The error also wraps the inner
	// scope's failure, if any. [Do] returns it too when its own callback
	// called SetRollbackOnly: it has no committed result to return.
	ErrUnexpectedRollback = errors.New("tx: transaction was marked rollback-only by an inner scope")

	// ErrNestedNotSupported is returned by a [Nested] scope: MongoDB has no
	// savepoints, so a transaction cannot contain a partial rollback.
	ErrNestedNotSupported = errors.New("tx: nested transactions (savepoints) are not supported by MongoDB")

	// ErrRetriesExhausted is matched by a [RetryError]: a transaction kept
	// failing with retryable errors until its attempt limit or time budget
	// ran out.
	ErrRetriesExhausted = errors.New("tx: retries exhausted")

	// ErrOptionConflict is returned by a scope that would join a transaction
	// but was given options that the transaction cannot honour, such as a
	// different write concern or its own retry policy.
	ErrOptionConflict = errors.New("tx: options conflict with the joined transaction")

	// ErrTransient is returned by [Tx.Commit] when MongoDB aborted the
	// transaction with a TransientTransactionError (a write conflict, a
	// primary step-down…). Running the whole unit of work again would
	// likely succeed, but a manual scope cannot re-run your code: do it
	// yourself, or use [Runner.Run], which does. The error also wraps the
	// driver's error.
	ErrTransient = errors.New("tx: transaction aborted by a transient error; run it again")

	// ErrCommitUnknown is matched (errors.Is) by the error of a scope whose
	// commit was sent but whose outcome could not be learned: the
	// transaction may or may not have committed. Do not blindly run a
	// keyless operation again after it; read the data, or repeat the call
	// with the same idempotency key. Its after-commit hooks did not run.
	// The error also wraps the last error of the commit.
	ErrCommitUnknown = errors.New("tx: commit outcome unknown; the transaction may have committed")

	// ErrClosed is matched by the error of a transaction started, with
	// [WithOrphanReaping], after [Runner.Close]: the process's registry is
	// no longer kept, so the transaction could not be killed by another
	// process if this one died, and it does not start.
	ErrClosed = errors.New("tx: Runner is closed")

	// ErrForeignTransaction is returned when hooks ([AfterCommit],
	// [BeforeCommit], [AfterCompletion]) are registered in a transaction
	// that the caller started with the driver: txkit joins such a
	// transaction but cannot know when it commits, so it cannot run them.
	ErrForeignTransaction = errors.New("tx: hooks need a transaction started by txkit, not one started with the driver")

	// ErrOtherClient is returned by a scope that would join the
	// transaction in ctx ([Required], [Mandatory], [Supports]) when that
	// transaction belongs to another mongo.Client than the Runner's: a
	// session of one client cannot carry another client's operations, and
	// a transaction of its own would commit apart from the caller's,
	// whatever the caller's then does. Nothing ran. Use one client for
	// both, or ask to run apart ([RequiresNew], [NotSupported]).
	ErrOtherClient = errors.New("tx: the transaction in context belongs to another mongo.Client and cannot be joined")

	// ErrTxDone is returned by [Tx.Commit] on a Tx already committed or
	// rolled back.
	ErrTxDone = errors.New("tx: transaction already committed or rolled back")
)

// RetryError is returned when a transaction kept failing with retryable
// errors (TransientTransactionError, UnknownTransactionCommitResult) until
// its attempt limit or time budget ran out. It matches
// [ErrRetriesExhausted] and wraps the last attempt's error, so
// errors.Is/As see both.
//
// When a time limit ran out (the scope's budget or ctx's deadline), it is
// a timeout as the driver defines one: mongo.IsTimeout reports true, as it
// does for the driver's own WithTransaction, while errors.As still finds
// the last error and its labels.
type RetryError struct {
	Name     string        // the scope's name
	Attempts int           // how many times the callback ran
	Elapsed  time.Duration // time spent in the scope
	Limit    string        // what ran out, e.g. "attempt limit 3"
	Err      error         // the last attempt's error

	timeout bool
}

// Timeout reports whether a time limit, not the attempt limit, ran out.
func (e *RetryError) Timeout() bool { return e.timeout }

// Temporary is false; it completes net.Error, through which
// mongo.IsTimeout recognises the error.
func (e *RetryError) Temporary() bool { return false }

// Error implements the error interface.
func (e *RetryError) Error() string {
	return fmt.Sprintf("tx %s: gave up after %d attempt(s) in %s (%s reached): %v",
		e.Name, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Limit, e.Err)
}

// Unwrap returns [ErrRetriesExhausted] and the last attempt's error.
func (e *RetryError) Unwrap() []error { return []error{ErrRetriesExhausted, e.Err} }

// PanicError reports a panic in an after-commit hook to the [Observer]
// (a hook's panic cannot undo the commit, so it is not re-raised).
type PanicError struct {
	Value any    // what the hook panicked with
	Stack []byte // the hook's goroutine stack at the panic
}

// Error implements the error interface.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// errRolledBackAsAsked is what the outermost scope returns to Run and Do
// when its own callback called [SetRollbackOnly]: Run reports nil, Do an
// [ErrUnexpectedRollback].
var errRolledBackAsAsked = errors.New("tx: rolled back as the callback asked")

// errPanicked is the [Event.Err] of a scope aborted because its callback
// panicked (the panic itself continues, untouched, after the cleanup).
var errPanicked = errors.New("tx: callback panicked or called runtime.Goexit")
