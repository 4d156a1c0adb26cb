package tx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// stateKey is the context key of the innermost scope's *txState.
type stateKey struct{}

// txState is one transaction: the outermost scope's session and everything
// its joined scopes share. A ctx holds a pointer to it (one allocation per
// transaction), so inner scopes find it without a registry.
type txState struct {
	client *mongo.Client
	sess   *mongo.Session // nil for a suspension marker
	parent *txState       // the state that was innermost when this one began

	// suspended marks a [NotSupported] scope: the transactions further out
	// are hidden from everything inside it.
	suspended bool

	// ended is set once the transaction committed or aborted for good, so a
	// ctx that outlives its scope no longer looks transactional.
	ended atomic.Bool

	cfg     config    // the owner's effective options
	pc      uintptr   // the owner's call site, for the default name
	start   time.Time // when the owner began
	budget  time.Duration
	attempt int  // 1-based; written by the owner between attempts only
	active  bool // a transaction is started and not yet committed/aborted

	mu      sync.Mutex
	rbOnly  bool  // the transaction can only abort
	rbInner bool  // …because of a joined scope, not the owner itself
	rbCause error // the first joined scope's error, if one failed
	hooks   []func(context.Context)
}

func (st *txState) name() string { return scopeName(st.cfg.name, st.pc) }

// topState returns the innermost state in ctx, whatever its client.
func topState(ctx context.Context) *txState {
	st, _ := ctx.Value(stateKey{}).(*txState)
	return st
}

// activeState returns the innermost live transaction in ctx, of any client;
// nil inside a [NotSupported] scope or outside any transaction.
func activeState(ctx context.Context) *txState {
	for st := topState(ctx); st != nil; st = st.parent {
		if st.suspended {
			return nil
		}
		if !st.ended.Load() {
			return st
		}
	}
	return nil
}

// lookup returns the innermost live transaction of client in ctx. A
// transaction of another client is skipped: it can never be joined, since
// its session would be rejected by this client's operations.
func lookup(ctx context.Context, client *mongo.Client) *txState {
	for st := topState(ctx); st != nil; st = st.parent {
		if st.suspended {
			return nil
		}
		if st.client == client && !st.ended.Load() {
			return st
		}
	}
	return nil
}

// InTransaction reports whether collection calls made with ctx are part of
// a running transaction: one started by a [Runner], or one the caller
// started with the driver (sess.StartTransaction, then
// mongo.NewSessionContext). Inside a [NotSupported] scope it is false.
func InTransaction(ctx context.Context) bool {
	if activeState(ctx) != nil {
		return true
	}
	if suspendedAt(ctx) {
		return false
	}
	sess := mongo.SessionFromContext(ctx)
	return sess != nil && sess.TransactionRunning()
}

// suspendedAt reports whether the innermost state in ctx hides the
// transactions further out (a [NotSupported] scope).
func suspendedAt(ctx context.Context) bool {
	st := topState(ctx)
	return st != nil && st.suspended
}

// AfterCommit registers fn to run after the transaction in ctx finally
// commits: once, in registration order, after the outermost scope's last
// commit succeeded. fn never runs if the transaction aborts, and hooks
// registered during an attempt that is then retried are dropped with it (the
// retry registers its own). Outside a transaction fn runs at once.
//
// fn receives the ctx the outermost scope was called with, which carries
// no session of the committed transaction. A panic in fn cannot undo the
// commit: it is recovered and reported to the [Observer] as an
// [EventHookPanic], and the remaining hooks still run.
func AfterCommit(ctx context.Context, fn func(context.Context)) {
	if fn == nil {
		return
	}
	st := activeState(ctx)
	if st == nil {
		fn(ctx)
		return
	}
	st.mu.Lock()
	st.hooks = append(st.hooks, fn)
	st.mu.Unlock()
}

// SetRollbackOnly marks the transaction in ctx so that it can only abort.
// Called by the outermost scope's own callback, the scope then aborts
// instead of committing: an intended rollback, for which [Runner.Run]
// returns nil and [Do] (which has no committed result to give)
// [ErrUnexpectedRollback]. Called inside
// a joined scope, it is that scope's failure: the outermost scope returns
// [ErrUnexpectedRollback]. Outside a transaction it does nothing.
func SetRollbackOnly(ctx context.Context) {
	if st := activeState(ctx); st != nil {
		st.mu.Lock()
		st.rbOnly = true
		st.mu.Unlock()
	}
}

// markRollbackOnly records a joined scope's failure.
func (st *txState) markRollbackOnly(cause error) {
	st.mu.Lock()
	st.rbOnly, st.rbInner = true, true
	if st.rbCause == nil {
		st.rbCause = cause
	}
	st.mu.Unlock()
}

func (st *txState) rollbackOnly() (only, byInner bool, cause error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rbOnly, st.rbInner, st.rbCause
}

// resetAttempt forgets what the previous attempt marked or registered.
func (st *txState) resetAttempt() {
	st.mu.Lock()
	st.rbOnly, st.rbInner, st.rbCause = false, false, nil
	clear(st.hooks)
	st.hooks = st.hooks[:0]
	st.mu.Unlock()
}

// takeHooks returns the registered hooks and forgets them.
func (st *txState) takeHooks() []func(context.Context) {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.hooks
	st.hooks = nil
	return h
}
