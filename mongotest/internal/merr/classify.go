package merr

// Error labels the server attaches to replies.
const (
	// LabelTransient marks an error after which the whole transaction may
	// be retried.
	LabelTransient = "TransientTransactionError"
	// LabelRetryableWrite marks an error after which a retryable write
	// may be retried.
	LabelRetryableWrite = "RetryableWriteError"
	// LabelUnknownCommit marks a commit whose outcome is unknown.
	LabelUnknownCommit = "UnknownTransactionCommitResult"
)

// Codes that only classification needs (MongoDB's error_codes.yml).
const (
	HostUnreachable                 int32 = 6
	HostNotFound                    int32 = 7
	NetworkTimeout                  int32 = 89
	ShutdownInProgress              int32 = 91
	PrimarySteppedDown              int32 = 189
	LockTimeout                     int32 = 24
	SnapshotUnavailable             int32 = 246
	PreparedTransactionInProgress   int32 = 267
	SocketException                 int32 = 9001
	InterruptedAtShutdown           int32 = 11600
	InterruptedDueToReplStateChange int32 = 11602
	NotPrimaryNoSecondaryOk         int32 = 13435
	NotPrimaryOrSecondary           int32 = 13436
)

// IsRetryable reports whether a driver may retry a write that failed with
// code; the server labels such errors RetryableWriteError.
func IsRetryable(code int32) bool {
	switch code {
	case HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown,
		ExceededTimeLimit, SocketException, NotWritablePrimary, InterruptedAtShutdown,
		InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary:
		return true
	}
	return false
}

// IsNotPrimary reports whether code is in MongoDB's NotPrimaryError
// category (error_codes.yml), whose replies carry the server's
// topologyVersion.
func IsNotPrimary(code int32) bool {
	switch code {
	case NotWritablePrimary, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary,
		InterruptedDueToReplStateChange, PrimarySteppedDown:
		return true
	}
	return false
}

// IsTransient reports whether an error of a command inside a transaction
// (other than commit and abort) lets the whole transaction be retried.
func IsTransient(code int32) bool {
	switch code {
	case WriteConflict, NoSuchTransaction, LockTimeout, PreparedTransactionInProgress, ExceededTimeLimit:
		return true
	}
	return IsRetryable(code)
}

// IsTransientCommit reports whether an error of commitTransaction or
// abortTransaction lets the whole transaction be retried. Unlike other
// commands in a transaction, retryable codes do not qualify (the commit
// itself is retried), and NoSuchTransaction only without a write concern
// error, as the data could otherwise still be rolled back (MongoDB's
// isTransientTransactionError).
func IsTransientCommit(code int32, hasWriteConcernError bool) bool {
	switch code {
	case WriteConflict, LockTimeout, PreparedTransactionInProgress, SnapshotUnavailable, SnapshotTooOld:
		return true
	case NoSuchTransaction:
		return !hasWriteConcernError
	}
	return false
}

// NewWriteConflict is the error MongoDB gives a write that conflicts with
// another transaction's.
func NewWriteConflict() *Error {
	return New(WriteConflict, "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.")
}
