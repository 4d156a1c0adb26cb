package tx

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// scopeKey is the context key of the innermost scope: its frame. Frames
// link to the frame that was innermost when they began, so inner scopes
// find their transaction without a registry.
type scopeKey struct{}

// topScope returns the innermost frame in ctx, whatever its client.
func topScope(ctx context.Context) *scope {
	sc, _ := ctx.Value(scopeKey{}).(*scope)
	return sc
}

// find returns the innermost live transaction in ctx and the frame it was
// found in. With a nil client, a transaction of any client matches; else
// only client's (another client's session would be rejected). It looks
// from the inside out: ctx's own session, then each frame's transaction
// and the session its scope was called with. A running transaction on one
// of those sessions that no frame started was started by the caller with
// the driver: it is returned as a foreign state with a nil frame — also
// when a frame of another client hides it from ctx (a scope of that
// client running apart), or when the caller started it inside a
// [NotSupported] scope. A NotSupported scope hides what is further out.
func find(ctx context.Context, client *mongo.Client) (*txState, *scope) {
	top := topScope(ctx)
	if st := driverTxn(mongo.SessionFromContext(ctx), client, top); st != nil {
		return st, nil
	}
	for sc := top; sc != nil; sc = sc.parent {
		if sc.suspended {
			return nil, nil
		}
		if st := sc.st; st != nil && (client == nil || st.client == client) && st.live() {
			return st, sc
		}
		if st := driverTxn(mongo.SessionFromContext(sc.caller), client, top); st != nil {
			return st, nil
		}
	}
	return nil, nil
}

// driverTxn returns sess's running transaction as a foreign state if it
// is client's (any client's if nil) and no frame from top outwards runs
// its transaction on sess: then the caller started it with the driver.
func driverTxn(sess *mongo.Session, client *mongo.Client, top *scope) *txState {
	if sess == nil || (client != nil && sess.Client() != client) {
		return nil
	}
	// A frame's session is not asked for its state: goroutines sharing
	// the transaction's ctx use it concurrently (the driver's session
	// state is not safe for that), and its frame knows its state.
	for sc := top; sc != nil; sc = sc.parent {
		if sc.st != nil && sc.st.sess == sess {
			return nil
		}
	}
	if !sess.TransactionRunning() {
		return nil
	}
	return &txState{client: sess.Client(), sess: sess, foreign: true}
}

// idleSession returns ctx's session if the caller put one there that runs
// no transaction, for the outermost scope to run its transaction on. A
// frame's session is recognised before the driver is asked for its state
// (see driverTxn).
func idleSession(ctx context.Context, client *mongo.Client) *mongo.Session {
	sess := mongo.SessionFromContext(ctx)
	if sess == nil || sess.Client() != client {
		return nil
	}
	for sc := topScope(ctx); sc != nil; sc = sc.parent {
		if sc.suspended {
			return nil
		}
		if sc.st != nil && sc.st.sess == sess && (!sc.st.borrowed || sc.st.live()) {
			return nil // txkit's own, ended with its scope, or running
		}
	}
	if sess.TransactionRunning() {
		return nil
	}
	return sess
}

// InTransaction reports whether collection calls made with ctx are part of
// a running transaction: one started by a [Runner], or one the caller
// started with the driver (sess.StartTransaction, then
// mongo.NewSessionContext). It answers for ctx's session, the one those
// calls use: inside a [NotSupported] scope (no session) it is false, and
// so it is for a session without a transaction that the caller put in a
// transaction's ctx. (A [Required] scope called with such a ctx still
// joins the transaction of its frame, and its callback's ctx carries that
// transaction's session.)
func InTransaction(ctx context.Context) bool {
	sess := mongo.SessionFromContext(ctx)
	if sess == nil {
		return false
	}
	for sc := topScope(ctx); sc != nil; sc = sc.parent {
		if sc.st != nil && sc.st.sess == sess {
			return sc.st.live() // not sess's state: goroutines share it
		}
	}
	return sess.TransactionRunning()
}

// suspend returns a ctx in which no transaction is visible: it carries no
// session, and a marker frame hides the frames further out.
func suspend(ctx context.Context) context.Context {
	if mongo.SessionFromContext(ctx) == nil && topScope(ctx) == nil {
		return ctx
	}
	ctx = mongo.NewSessionContext(ctx, nil)
	return context.WithValue(ctx, scopeKey{}, &scope{suspended: true, parent: topScope(ctx)})
}

// hookContext returns the ctx hooks run on: caller's values, without its
// deadline or cancellation, without any session or visible transaction.
func hookContext(caller context.Context) context.Context {
	return suspend(context.WithoutCancel(caller))
}

// Outcome is how a transaction ended, as told to [AfterCompletion] hooks.
type Outcome uint8

// The outcomes of a transaction.
const (
	// Committed: the transaction committed.
	Committed Outcome = iota + 1
	// RolledBack: the transaction aborted; none of it was applied.
	RolledBack
	// Unknown: a commit was sent but its outcome could not be learned (the
	// scope returned [ErrCommitUnknown]).
	Unknown
)

// String returns "committed", "rolled back" or "unknown".
func (o Outcome) String() string {
	switch o {
	case Committed:
		return "committed"
	case RolledBack:
		return "rolled back"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// register adds a hook to the transaction in ctx. It returns false outside
// any transaction; a transaction started with the driver cannot take hooks.
func register(ctx context.Context, add func(*hooks)) (bool, error) {
	st, _ := find(ctx, nil)
	if st == nil {
		return false, nil
	}
	if st.foreign {
		return true, ErrForeignTransaction
	}
	st.mu.Lock()
	add(&st.hooks)
	st.mu.Unlock()
	return true, nil
}

// AfterCommit registers fn to run after the transaction in ctx finally
// commits: once, in registration order, after the outermost scope's last
// commit succeeded. fn never runs if the transaction aborts or its outcome
// is unknown, and hooks registered during an attempt that is then retried
// are dropped with it (the retry registers its own). Outside a transaction
// fn runs at once.
//
// fn receives the ctx the outermost scope was called with: its values,
// without its deadline or cancellation (fn may do I/O after the scope
// returned) and without any session or transaction. A panic in fn cannot
// undo the commit: it is recovered and reported to the [Observer] as an
// [EventHookPanic], and the remaining hooks still run.
//
// In a transaction that the caller started with the driver, txkit cannot
// know when it commits: AfterCommit panics with [ErrForeignTransaction]
// there, and a scope that joined such a transaction returns that error if
// fn registered hooks through it.
func AfterCommit(ctx context.Context, fn func(context.Context)) {
	if fn == nil {
		return
	}
	in, err := register(ctx, func(h *hooks) { h.afterCommit = append(h.afterCommit, fn) })
	if err != nil {
		if _, sc := find(ctx, nil); sc != nil {
			sc.st.markForeignHook()
			return
		}
		panic(err)
	}
	if !in {
		fn(ctx)
	}
}

// BeforeCommit registers fn to run inside the transaction in ctx, after the
// outermost scope's callback returned nil and before its commit, on the
// transaction's ctx. An error from fn aborts the transaction and is what the
// scope returns (fn may return [Retryable] to have [Runner.Run] run the
// transaction again). Hooks run once per attempt, in registration order;
// a hook may register more. Outside a transaction fn runs at once and
// BeforeCommit returns its error. In a transaction the caller started with
// the driver, BeforeCommit returns [ErrForeignTransaction].
func BeforeCommit(ctx context.Context, fn func(context.Context) error) error {
	if fn == nil {
		return nil
	}
	in, err := register(ctx, func(h *hooks) { h.beforeCommit = append(h.beforeCommit, fn) })
	if err != nil {
		if _, sc := find(ctx, nil); sc != nil {
			sc.st.markForeignHook()
		}
		return err
	}
	if !in {
		return fn(ctx)
	}
	return nil
}

// AfterCompletion registers fn to run once after the outermost scope of
// the transaction in ctx ended, told how: [Committed], [RolledBack] or
// [Unknown]. It runs after the [AfterCommit] hooks, on the same ctx as
// they do, and a panic in it is handled the same way. Hooks registered
// during an attempt that is retried are dropped with it. Outside a
// transaction fn runs at once with [Committed] (the writes were applied as
// they were made). In a transaction the caller started with the driver it
// panics with [ErrForeignTransaction], as [AfterCommit] does.
func AfterCompletion(ctx context.Context, fn func(context.Context, Outcome)) {
	if fn == nil {
		return
	}
	in, err := register(ctx, func(h *hooks) { h.afterCompletion = append(h.afterCompletion, fn) })
	if err != nil {
		if _, sc := find(ctx, nil); sc != nil {
			sc.st.markForeignHook()
			return
		}
		panic(err)
	}
	if !in {
		fn(ctx, Committed)
	}
}

// SetRollbackOnly marks the transaction in ctx so that it can only abort.
// Called by the outermost scope's own callback, the scope then aborts
// instead of committing: an intended rollback, for which [Runner.Run]
// returns nil and [Do] (which has no committed result to give)
// [ErrUnexpectedRollback]. Called inside
// a joined scope, it is that scope's failure: the outermost scope returns
// [ErrUnexpectedRollback]. Outside a transaction it does nothing.
func SetRollbackOnly(ctx context.Context) {
	if st, _ := find(ctx, nil); st != nil {
		st.mu.Lock()
		st.rbOnly = true
		st.mu.Unlock()
	}
}
