package tx

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
)

// retryableError marks an error as worth re-running the whole transaction
// for, without pretending that the server said so.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable wraps err so that the outermost [Runner.Run] scope treats it as
// it treats a TransientTransactionError: it aborts the attempt and runs the
// callback again, within the same limits ([WithMaxAttempts], the time
// budget). Use it for a condition of your own that a new attempt, on a new
// snapshot, may clear (a guard that lost a race, say). errors.Is and
// errors.As see err through the wrapper, and no server error label is added
// to it. Retryable(nil) is nil.
//
// A joined scope's Retryable error reaches the outermost scope through the
// callbacks' returns, or through [ErrUnexpectedRollback], which wraps it;
// either way the whole transaction is run again.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// IsRetryable reports whether the outermost [Runner.Run] scope re-runs its
// callback for err: err was wrapped by [Retryable], MongoDB labelled it
// TransientTransactionError, or a statement found its connection pool
// cleared by another operation's network error (nothing was sent; the
// driver retries that error by itself outside a transaction, but returns
// it unlabelled inside one).
func IsRetryable(err error) bool {
	var re *retryableError
	return errors.As(err, &re) || hasLabel(err, labelTransient) || isRetryablePoolError(err)
}

// isRetryablePoolError reports whether err is a connection pool error the
// driver itself would retry: no connection was checked out, so no command
// was sent.
func isRetryablePoolError(err error) bool {
	var pe driver.RetryablePoolError
	return errors.As(err, &pe) && pe.Retryable()
}
