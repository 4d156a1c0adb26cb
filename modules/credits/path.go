package credits

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/txkit/txkit/tx"
)

// writePath is the way a mutation is written.
type writePath int

const (
	// pathSingleDoc: one guarded update of the account document that
	// embeds the entry (the hotWriter), without a transaction.
	pathSingleDoc writePath = iota
	// pathTransaction: in the caller's transaction, or one of the runner.
	pathTransaction
)

// opKind names a mutation.
type opKind string

const (
	opAdd      opKind = "add"
	opDeduct   opKind = "deduct"
	opTransfer opKind = "transfer"
	opReserve  opKind = "reserve"
	opCapture  opKind = "capture"
)

// txName is the name of op's transactions, e.g. "credits.Deduct".
func (op opKind) txName() string {
	return "credits." + strings.ToUpper(string(op[:1])) + string(op[1:])
}

// pathFor decides how op is written; it is the only place that does. A
// mutation of one account's balance (Add, Deduct), keyed or not, takes the
// single-document path, unless ctx carries a transaction — txkit's or one
// the caller started with the driver: then the write belongs to that
// transaction alone and must commit or vanish with it, so it is never
// combined with other callers' writes. Every mutation that changes two
// documents together (Transfer, Reserve, Capture) is transactional.
func pathFor(ctx context.Context, op opKind) writePath {
	if inTransaction(ctx) {
		return pathTransaction
	}
	switch op {
	case opAdd, opDeduct:
		return pathSingleDoc
	default:
		return pathTransaction
	}
}

// inTransaction reports whether ctx carries a transaction, txkit's or one
// started with the driver (tx.InTransaction sees both).
func inTransaction(ctx context.Context) bool { return tx.InTransaction(ctx) }

// inTx runs fn in the transaction in ctx, or in a new one of r. A
// transaction the caller started with the driver is joined (tx.Required
// does): fn runs in it and txkit neither commits nor aborts it. The
// transaction keeps the caller's deadline, commit included; a commit whose
// outcome is not learned is ErrOutcomeUnknown (which also matches
// tx.ErrCommitUnknown).
func inTx[T any](ctx context.Context, r *tx.Runner, name string, fn func(ctx context.Context) (T, error)) (T, error) {
	res, err := tx.Do(ctx, r, fn, tx.WithName(name), tx.WithDeadlineOf(ctx))
	if errors.Is(err, tx.ErrCommitUnknown) && !errors.Is(err, ErrOutcomeUnknown) {
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return res, err
}

// inTxOn is inTx for a transaction that writes accounts. When it starts
// the transaction itself, each attempt holds the accounts' lanes (see
// hotWriter.hold), so that this process's single-document writes cannot
// starve it. In a caller's transaction it does not: that transaction may
// already have written an account, and a single-document write waiting
// for its commit must not also be waited for by it.
func inTxOn[T any](ctx context.Context, s *Service, name string, accounts []string, fn func(ctx context.Context) (T, error)) (T, error) {
	if inTransaction(ctx) {
		return inTx(ctx, s.runner, name, fn)
	}
	return inTx(ctx, s.runner, name, func(ctx context.Context) (T, error) {
		release, err := s.hot.hold(ctx, accounts...)
		if err != nil {
			var zero T
			return zero, err
		}
		defer release()
		return fn(ctx)
	})
}
