package credits

import (
	"errors"

	"github.com/txkit/txkit/tx"
)

// Business errors. Every one of them is returned wrapped with context;
// match them with errors.Is. Infrastructure failures (MongoDB, the
// transaction runner) are returned as they are and match none of these.
var (
	// ErrInsufficientCredits is returned when an account's available
	// balance (balance minus open holds) is less than the amount asked for.
	ErrInsufficientCredits = errors.New("credits: insufficient credits")
	// ErrAccountNotFound is returned for an account that has never been
	// credited.
	ErrAccountNotFound = errors.New("credits: account not found")
	// ErrInvalidAmount is returned for an amount that is zero or negative,
	// or a capture larger than its hold.
	ErrInvalidAmount = errors.New("credits: invalid amount")
	// ErrOverflow is returned when a credit would take a balance past the
	// largest int64.
	ErrOverflow = errors.New("credits: balance would overflow int64")
	// ErrIdempotencyConflict is returned when an idempotency key is used
	// again with different parameters.
	ErrIdempotencyConflict = errors.New("credits: idempotency key reused with different parameters")
	// ErrHoldNotFound is returned for a hold id that names no hold.
	ErrHoldNotFound = errors.New("credits: hold not found")
	// ErrHoldExpired is returned when capturing a hold whose time ran out;
	// its amount has been (or is being) released.
	ErrHoldExpired = errors.New("credits: hold expired")
	// ErrHoldClosed is returned when capturing or releasing a hold that was
	// already captured or released.
	ErrHoldClosed = errors.New("credits: hold already closed")
	// ErrInvalidAccount is returned for an account id that is empty, longer
	// than 128 bytes or not made of [A-Za-z0-9_.:-].
	ErrInvalidAccount = errors.New("credits: invalid account id")
	// ErrInvalidOption is returned for a malformed operation option: an
	// idempotency key, reason or reference too long or badly formed, a
	// non-positive hold TTL, a bad history cursor.
	ErrInvalidOption = errors.New("credits: invalid option")
	// ErrContended is returned when a write lost its guarded update to
	// concurrent writers of the same account several times in a row.
	// Nothing was applied; the call may be retried (with the same key).
	ErrContended = errors.New("credits: account too contended, nothing written; retry")
)

// ErrOutcomeUnknown is returned when a write was sent but whether it was
// applied could not be learned (the connection failed, then so did the
// checks that followed). The operation may have happened. Retry it with
// the same idempotency key: that applies it if it was not, and returns its
// entry if it was. Without a key, a retry may apply it twice. It also
// matches tx.ErrCommitUnknown, so that one check catches both; a
// transaction whose commit outcome stays unknown is reported with both.
var ErrOutcomeUnknown error = outcomeUnknownError{}

type outcomeUnknownError struct{}

func (outcomeUnknownError) Error() string {
	return "credits: outcome unknown; the write may have been applied, retry with the same idempotency key"
}

func (outcomeUnknownError) Is(target error) bool { return target == tx.ErrCommitUnknown }
