package chaos

import (
	"context"
	"errors"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// businessErrs are the errors that say an operation was refused by a rule
// of the ledger or the payment state machine: nothing was written.
var businessErrs = []error{
	credits.ErrInsufficientCredits, credits.ErrAccountNotFound, credits.ErrInvalidAmount,
	credits.ErrOverflow, credits.ErrIdempotencyConflict, credits.ErrHoldNotFound,
	credits.ErrHoldExpired, credits.ErrHoldClosed, credits.ErrInvalidAccount,
	credits.ErrInvalidOption, credits.ErrContended,
	payments.ErrPaymentNotFound, payments.ErrInvalidTransition, payments.ErrDuplicateProviderRef,
	payments.ErrInvalidPayment,
}

// unknownErrs are the errors by which the modules say plainly that an
// operation's outcome is unknown.
var unknownErrs = []error{tx.ErrCommitUnknown, credits.ErrOutcomeUnknown, payments.ErrOutcomeUnknown}

// Classify returns the outcome an operation's caller was told by err.
// sent reports whether a commit, or a write outside a transaction, had
// been sent for the operation: a context error after that leaves the
// outcome unknown, before it means nothing was done.
func Classify(err error, sent bool) Outcome {
	if out, ok := classifyHTTP(err); ok {
		return out
	}
	switch {
	case err == nil:
		return Applied
	case isAny(err, unknownErrs):
		return Unknown
	case isAny(err, businessErrs):
		return Rejected
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if sent {
			return Unknown
		}
		return Failed
	}
	return Failed
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// sendKey is the context key of an operation's [Sent] flag.
type sendKey struct{}

// Sent records whether an operation sent a commit or a write outside a
// transaction; [Monitor] sets it from the driver's command events.
type Sent struct{ atomic.Bool }

// WithSent returns ctx carrying s, for [Monitor] to set.
func WithSent(ctx context.Context, s *Sent) context.Context {
	return context.WithValue(ctx, sendKey{}, s)
}

// Monitor is a command monitor that sets the [Sent] flag of the operation
// whose ctx sends a commitTransaction, or a write outside a transaction.
// It only observes: the driver's command events carry the ctx of the call.
func Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		s, _ := ctx.Value(sendKey{}).(*Sent)
		if s == nil {
			return
		}
		switch e.CommandName {
		case "commitTransaction":
			s.Store(true)
		case "insert", "update", "delete", "findAndModify":
			if _, err := e.Command.LookupErr("autocommit"); err != nil {
				s.Store(true)
			}
		}
	}}
}
