package tx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	//lint:ignore SA1019 only its ErrAbortAfterCommit tells a session the callback committed from one it aborted; TestACallbackThatEndsTheTransactionItselfIsNotCommittedAgain pins it
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/session"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// commit commits the owner's transaction and carries the commit to a
// definite outcome: it retries the commit alone while its outcome is
// unknown, on a ctx that keeps the caller's values but not its
// cancellation, bounded only by the runner's own budget (WithTimeout, else
// DefaultRetryBudget) and WithMaxAttempts. A commit once sent is never
// followed by abortTransaction. On failure, again reports that the whole
// transaction may be run again (TransientTransactionError): it is then
// already over for the driver.
//
// One rule holds for every send: an answer proves the outcome only if it is
// success, or an answer that MongoDB gives only when the transaction has no
// persistent effect (TransientTransactionError: on a commit,
// NoSuchTransaction without a write concern error). Any other error, the
// first send's included, may hide an applied send: the driver resends a
// commit by itself after a retryable error (a retryable write concern
// error comes from a primary that applied the commit and is going away)
// and returns only the resend's answer, which may be an unlabelled
// Interrupted from a killSessions. The commit is then sent again, after a
// backoff (commitTransaction is idempotent), or the outcome is reported
// unknown. Only a client-side error that proves nothing was sent
// (sentNothing) ends the first send as a failure.
func (sc *scope) commit() (again bool, err error) {
	st := sc.st
	// Like the driver's WithTransaction, the commit's ctx has no deadline
	// unless WithTimeout set one: with a deadline the driver resends a
	// failed commit until it passes, without one it resends it once, and
	// the budget is checked between sends.
	cctx := context.WithoutCancel(sc.caller)
	if sc.cfg.timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(cctx, sc.start.Add(st.budget))
		defer cancel()
	}
	mayHaveApplied := false // some send's outcome is unknown
	for sends := 1; ; sends++ {
		err := st.sess.CommitTransaction(cctx)
		if err == nil {
			st.active = false
			st.ended.Store(true)
			// Its commands superseded any attempt left open before it.
			st.leftOpen = false
			sc.endSessionOn(cctx) // no transaction left: no I/O
			sc.observe(EventCommit, nil, false)
			sc.complete(Committed)
			sc.close()
			return false, nil
		}
		if hasLabel(err, labelTransient) && (noSuchTransaction(err) || !mayHaveApplied && checkoutRefused(err)) {
			st.active = false
			// Refused before it ran (a connection pool cleared under
			// the send), the transaction may still be open, holding
			// its documents, and the driver allows no abort after a
			// commit: its session goes to the reaper (see
			// scope.endLeftOpen and endSession). Any other send
			// refused before it ran (a fail point) says nothing of an
			// earlier send, which may have applied: the driver's own,
			// before it resent the first one by itself, included. Only
			// the server's NoSuchTransaction (the transaction is not
			// there, committed or open) proves it did not commit;
			// anything else is sent again below.
			st.leftOpen = true
			return true, err
		}
		said := hasLabel(err, labelUnknownCommit) || hasWriteConcernError(err) // the server said it may have applied
		if !mayHaveApplied && sentNothing(err) {
			// No send went out for this transaction's commit. When no
			// server was selected the driver still runs the
			// transaction: the abort ends it, and if it finds no server
			// either, leaves the session to the reaper (see abort).
			err = fmt.Errorf("tx %s: commit: %w", sc.name(), err)
			sc.endAborted(err, true)
			return false, err
		}
		// Not resent: a commit that ran out of its own time limit, and a
		// send cut by the budget's deadline (a timeout, the end of ctx).
		resend := (said || !(mongo.IsTimeout(err) || isContextError(err))) && !isMaxTimeMSExpired(err)
		mayHaveApplied = true
		if resend {
			limit := sc.commitLimit(sends)
			if limit == "" {
				var wait time.Duration
				if !said {
					// Not an answer that MongoDB expects a resend to
					// clear at once (Interrupted, say): wait, as before
					// a run again.
					wait = sc.cfg.backoff.delay(sends, rand.Float64())
				}
				sc.observeRetry(err, wait, true)
				if sleep(cctx, wait) == nil {
					continue
				}
				limit = "time budget " + st.budget.String()
			}
			err = &RetryError{Name: sc.name(), Attempts: st.attempt, Elapsed: time.Since(sc.start), Limit: limit, Err: err, timeout: limit != attemptLimit(sc.cfg.maxAttempts)}
		}
		return false, sc.endUnknown(err)
	}
}

// commitLimit returns what stops another send of the commit, or "".
func (sc *scope) commitLimit(sends int) string {
	switch {
	case sc.cfg.maxAttempts > 0 && sends >= sc.cfg.maxAttempts:
		return attemptLimit(sc.cfg.maxAttempts)
	case time.Since(sc.start) >= sc.st.budget:
		return "time budget " + sc.st.budget.String()
	}
	return ""
}

func attemptLimit(n int) string { return fmt.Sprintf("attempt limit %d", n) }

// endUnknown ends a transaction whose commit was sent but whose outcome
// could not be learned. It must not be aborted: the commit may have
// applied. After a timeout the driver still holds it as in progress and
// would abort it when the session ends, so the session is ended on a
// cancelled ctx: the driver's abort then fails to get a connection and
// sends nothing. The server finishes the transaction either way.
func (sc *scope) endUnknown(err error) error {
	st := sc.st
	st.active = false
	st.ended.Store(true)
	st.leftOpen = true // if it did not commit, it is still open
	err = commitUnknown(sc, err)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	sc.endSessionOn(done)
	sc.observe(EventCommitUnknown, err, true)
	sc.complete(Unknown)
	sc.close()
	return err
}

// sentNothing reports whether CommitTransaction failed before any send:
// the session had no transaction to commit (checked before any I/O), or no
// server was selected. The driver returns a selection error only when no
// send preceded it; a failed reselection for its own resend returns the
// earlier send's error instead.
func sentNothing(err error) bool {
	var sse topology.ServerSelectionError
	return errors.Is(err, session.ErrNoTransactStarted) || errors.Is(err, session.ErrCommitAfterAbort) || //lint:ignore SA1019 see the import
		errors.As(err, &sse)
}

// checkoutRefused reports whether CommitTransaction got no connection for
// its send (the pool was cleared): the driver returns that error only when
// no send of its own preceded it, else the earlier send's error.
func checkoutRefused(err error) bool {
	var pe driver.RetryablePoolError
	return errors.As(err, &pe)
}

// noSuchTransaction reports whether the server answered NoSuchTransaction
// with no write concern error: the transaction is neither committed nor
// open there.
func noSuchTransaction(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(codeNoSuchTransaction) && !hasWriteConcernError(err)
}

// hasWriteConcernError reports whether a commit's reply carried a write
// concern error: the commit ran on the primary, whatever the labels say
// (the driver does not always turn such a reply into a labelled error), so
// it may have applied and is resent rather than reported as failed.
func hasWriteConcernError(err error) bool {
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError != nil {
		return true
	}
	var wce driver.WriteCommandError
	return errors.As(err, &wce) && wce.WriteConcernError != nil
}

func commitUnknown(sc *scope, err error) error {
	return fmt.Errorf("%w (transaction %s): %w", ErrCommitUnknown, sc.name(), err)
}

// committedByCallback reports whether the transaction that the callback
// ended itself was committed (else it was aborted). Asking the driver to
// abort a finished transaction sends nothing and says which it was.
func committedByCallback(sess *mongo.Session) bool {
	err := sess.AbortTransaction(context.Background())
	return errors.Is(err, session.ErrAbortAfterCommit) //lint:ignore SA1019 see the import

}

// abort aborts the transaction if one is active, on a context that
// outlives the caller's cancellation but not the clean-up bound
// ([WithCleanupTimeout]). The driver does not say whether abortTransaction
// reached the server (it ignores the answer, as the spec says), so the
// transaction is taken to be left open on the server when the abort used
// (nearly) all of the clean-up time, cut by the driver or by the server's
// maxTimeMS, which the driver derives from the deadline; or when cause,
// what ended the attempt, is a network error (the abort then most likely
// met the same broken connection), a timeout or the end of ctx: a
// statement whose reply was not awaited may still reach the server after
// the abort, and if it was the first one, start the transaction there.
// The scope's ctx having ended says the same when cause does not (a
// manual scope's Rollback is not given the statement's error, and a
// callback may return another one).
// Its session then goes to the reaper instead of the driver's pool (see
// endSession and reaper). So does a session the reaper kept (see
// txState.spare), which the driver would discard with what a refused
// abort left open.
func (st *txState) abort(ctx context.Context, cause error) {
	if !st.active {
		return
	}
	st.active = false
	if !st.sess.TransactionRunning() {
		return
	}
	actx, cancel := st.cleanupContext(ctx)
	defer cancel()
	_ = st.sess.AbortTransaction(actx)
	if time.Until(st.cleanupBy) < st.owner.cfg.cleanup/10 || mongo.IsNetworkError(cause) ||
		mongo.IsTimeout(cause) || isContextError(cause) || st.owner.ctx != nil && st.owner.ctx.Err() != nil || st.spare {
		st.leftOpen = true
	}
}

// cleanupContext returns the context of the attempt's clean-up: the
// caller's values without its cancellation, and one deadline shared by
// the abort and the end of the session.
func (st *txState) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if st.cleanupBy.IsZero() {
		st.cleanupBy = time.Now().Add(st.owner.cfg.cleanup)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), st.cleanupBy)
}

// endSession ends the owner's session, unless it was borrowed from the
// caller's ctx. A session whose transaction may be left open on the server
// goes to the runner's reaper, which kills it there and only then ends it:
// ended now, it would go back to the driver's pool, and the kill would hit
// the next transaction that reuses it.
func (sc *scope) endSession() {
	st := sc.st
	// Reaped (or refused by a closed reaper, which counts it) before the
	// registry hears that the transaction ended: a Close never sees
	// neither (see registry.close).
	reaped := !st.borrowed && sc.reaped()
	st.unrecord()
	if st.borrowed || reaped {
		return
	}
	ectx, cancel := st.cleanupContext(sc.caller)
	defer cancel()
	st.sess.EndSession(ectx)
}

func (sc *scope) endSessionOn(ctx context.Context) {
	reaped := !sc.st.borrowed && sc.reaped() // before unrecord, as in endSession
	sc.st.unrecord()
	if !sc.st.borrowed && !reaped {
		sc.st.sess.EndSession(ctx)
	}
}

// unrecord tells the orphan registry that the transaction ended: the
// registry's documents may go at Close (see registry.close).
func (st *txState) unrecord() {
	if st.orphans != nil {
		st.orphans.release()
		st.orphans = nil
	}
}

// reaped hands the owner's session to the reaper if its transaction may be
// left open on the server, and reports whether the reaper took it.
func (sc *scope) reaped() bool {
	st := sc.st
	return st.leftOpen && st.reaper != nil && st.reaper.add(st.sess)
}
