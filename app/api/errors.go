package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/txkit/txkit/internal/idempotency"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// businessErrors maps the modules' sentinel errors to their HTTP answer.
// The detail is written here, not taken from the error, so that no
// internal wording (or data) leaks into responses.
var businessErrors = []struct {
	err    error
	status int
	code   string
	detail string
}{
	{credits.ErrInsufficientCredits, http.StatusConflict, codeInsufficientCredits, "the account has not enough available credits for this operation"},
	{credits.ErrIdempotencyConflict, http.StatusConflict, codeIdempotencyConflict, "this Idempotency-Key was already used with different parameters"},
	{idempotency.ErrConflict, http.StatusConflict, codeIdempotencyConflict, "this Idempotency-Key was already used for a different request; use a new key for a new request"},
	{credits.ErrHoldExpired, http.StatusConflict, codeHoldExpired, "the hold has expired; its credits are available again"},
	{credits.ErrHoldClosed, http.StatusConflict, codeHoldClosed, "the hold was already captured or released"},
	{credits.ErrOverflow, http.StatusConflict, codeOverflow, "the operation would overflow the account balance"},
	{credits.ErrAccountNotFound, http.StatusNotFound, codeAccountNotFound, "no such account"},
	{credits.ErrHoldNotFound, http.StatusNotFound, codeHoldNotFound, "no such hold"},
	{credits.ErrInvalidAmount, http.StatusBadRequest, codeInvalidAmount, "amount must be a positive integer number of credits"},
	{credits.ErrInvalidAccount, http.StatusBadRequest, codeInvalidAccount, "invalid account id"},
	{credits.ErrInvalidOption, http.StatusBadRequest, codeBadRequest, "invalid parameter (idempotency key, reason, ttl or cursor)"},
	{payments.ErrPaymentNotFound, http.StatusNotFound, codePaymentNotFound, "no such payment"},
	{payments.ErrInvalidTransition, http.StatusConflict, codeInvalidTransition, "the payment's current status does not allow this operation"},
	{payments.ErrDuplicateProviderRef, http.StatusConflict, codeDuplicateProviderRef, "a payment with this provider and provider_ref already exists"},
	{payments.ErrInvalidPayment, http.StatusBadRequest, codeInvalidPayment, "invalid payment"},
	{credits.ErrContended, http.StatusServiceUnavailable, codeContended, "the account is too busy right now and nothing was written; retry with the same Idempotency-Key"},
}

// Answers that say the client should come back: their Retry-After, and the
// detail of an operation whose outcome is unknown.
const (
	retryAfterSeconds    = 1
	outcomeUnknownDetail = "the operation may or may not have been applied; repeat it with the same Idempotency-Key to learn its outcome"
)

// outcomeUnknownProblem is the answer to a request whose writes may have
// been applied: a commit whose answer was lost, a write concern not
// confirmed, or no answer in time.
var outcomeUnknownProblem = problem{Status: http.StatusServiceUnavailable, Code: codeOutcomeUnknown, Detail: outcomeUnknownDetail, RetryAfter: retryAfterSeconds}

// toProblem maps any error to the problem to answer with. An error that
// leaves the outcome unknown is said to, before anything else; other
// unknown errors become 503 when the database is unreachable and 500
// otherwise, with no detail beyond the request id.
func toProblem(err error) problem {
	if outcomeUnknown(err) {
		return outcomeUnknownProblem
	}
	if ae, ok := errors.AsType[*apiError](err); ok {
		return problem{Status: ae.Status, Code: ae.Code, Detail: ae.Detail}
	}
	for _, b := range businessErrors {
		if errors.Is(err, b.err) {
			p := problem{Status: b.status, Code: b.code, Detail: b.detail}
			if b.status == http.StatusServiceUnavailable {
				p.RetryAfter = retryAfterSeconds // every 503 says when to come back
			}
			return p
		}
	}
	if unavailable(err) {
		return problem{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Detail: "the database is unreachable or too slow; retry later with the same Idempotency-Key", RetryAfter: retryAfterSeconds}
	}
	return problem{Status: http.StatusInternalServerError, Code: codeInternal, Detail: "internal error; see the server log for this request id"}
}

// outcomeUnknown reports whether err leaves open whether the operation was
// applied: the runner could not learn its commit's outcome, or a write was
// applied but its write concern was not confirmed.
func outcomeUnknown(err error) bool {
	if errors.Is(err, tx.ErrCommitUnknown) || errors.Is(err, credits.ErrOutcomeUnknown) || errors.Is(err, errMaybeApplied) {
		return true
	}
	if we, ok := errors.AsType[mongo.WriteException](err); ok && we.WriteConcernError != nil {
		return true
	}
	return false
}

// errMaybeApplied marks the error of a write that reached, or may have
// reached, the database before it failed (see [sentWriteError]).
var errMaybeApplied = errors.New("api: the write may have been applied")

// sentWriteError returns err, marked as leaving the outcome unknown when it
// is a timeout or network failure of something that may have reached the
// database: a single-document write applies on its own, so a lost answer
// does not mean it was not applied.
func sentWriteError(err error) error {
	if err == nil || !unavailable(err) || unsent(err) || errors.Is(err, tx.ErrRetriesExhausted) {
		return err
	}
	return fmt.Errorf("%w: %w", errMaybeApplied, err)
}

// unsent reports whether err says that nothing reached the database: no
// server could be selected, or the client was closed.
func unsent(err error) bool {
	if _, ok := errors.AsType[topology.ServerSelectionError](err); ok {
		return true
	}
	if _, ok := errors.AsType[topology.ConnectionError](err); ok {
		return true // no connection, so nothing was sent on it
	}
	return poolCleared(err) || errors.Is(err, mongo.ErrClientDisconnected)
}

// poolCleared reports the driver's refusal to check out a connection
// from a pool that another operation's network error cleared: the
// operation was not sent (finding: a debit answered 500 during a closed
// connection).
func poolCleared(err error) bool {
	var pe driver.RetryablePoolError
	return errors.As(err, &pe)
}

// unavailable reports whether err means the database could not be reached
// (in time): the request may succeed later, so it is a 503, not a 500.
func unavailable(err error) bool {
	if _, ok := errors.AsType[topology.ServerSelectionError](err); ok {
		return true
	}
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || poolCleared(err) || stateChange(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.Is(err, tx.ErrRetriesExhausted)
}

// stateChangeCodes are the server's "not writable primary" and "node is
// recovering or shutting down" codes (the SDAM specification's state
// change errors): a failover or a shutdown, not a bug.
var stateChangeCodes = []int{10107, 13435, 13436, 189, 91, 11600, 11602, 21}

// stateChange reports whether err is a server's answer that it cannot take
// writes now (a failover or shutdown outlasting the driver's one retry).
func stateChange(err error) bool {
	se, ok := errors.AsType[mongo.ServerError](err)
	if !ok {
		return false
	}
	for _, c := range stateChangeCodes {
		if se.HasErrorCode(c) {
			return true
		}
	}
	return se.HasErrorLabel("RetryableWriteError")
}
