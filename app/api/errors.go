package api

import (
	"context"
	"errors"
	"net/http"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

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
}

// toProblem maps any error to the problem to answer with. Unknown errors
// become 503 when the database is unreachable and 500 otherwise, with no
// detail beyond the request id.
func toProblem(err error) problem {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return problem{Status: ae.Status, Code: ae.Code, Detail: ae.Detail}
	}
	for _, b := range businessErrors {
		if errors.Is(err, b.err) {
			return problem{Status: b.status, Code: b.code, Detail: b.detail}
		}
	}
	if unavailable(err) {
		return problem{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Detail: "the database is unreachable or too slow; retry later with the same Idempotency-Key"}
	}
	return problem{Status: http.StatusInternalServerError, Code: codeInternal, Detail: "internal error; see the server log for this request id"}
}

// unavailable reports whether err means the database could not be reached
// (in time): the request may succeed later, so it is a 503, not a 500.
func unavailable(err error) bool {
	if _, ok := errors.AsType[topology.ServerSelectionError](err); ok {
		return true
	}
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.Is(err, tx.ErrRetriesExhausted)
}
