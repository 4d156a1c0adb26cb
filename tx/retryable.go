package tx

import "errors"

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
// callback for err: err was wrapped by [Retryable], or MongoDB labelled it
// TransientTransactionError.
func IsRetryable(err error) bool {
	var re *retryableError
	return errors.As(err, &re) || hasLabel(err, labelTransient)
}
