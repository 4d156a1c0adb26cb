package tx

import (
	"context"
	"errors"
	"fmt"
)

// Tx is a manual transaction scope, the Go form of a transaction context
// manager; [Runner.Begin] starts it. End it with [Tx.Commit] or
// [Tx.Rollback], on every path:
//
//	ctx, t, err := runner.Begin(ctx)
//	if err != nil {
//		return err
//	}
//	defer t.Rollback(ctx) // a no-op after Commit
//	// … collection calls with ctx …
//	return t.Commit(ctx)
//
// A manual scope cannot re-run your code: if MongoDB aborts the
// transaction with a TransientTransactionError (a write conflict, say),
// Commit returns [ErrTransient] and it is up to you to run the unit of work
// again. [Runner.Run] does that for you; prefer it. Commit does retry the
// commit itself when its outcome is unknown (UnknownTransactionCommitResult).
//
// A Tx is not safe for concurrent use. It is the same scope engine as
// [Runner.Run]: propagation, hooks and outcomes follow the same rules.
type Tx struct {
	sc   *scope
	done bool
}

// Begin starts a manual scope, as the propagation mode says: with the
// default, [Required], it joins the transaction in ctx or starts one. Use
// the returned ctx for every collection call in the scope. On error, Begin
// returns ctx unchanged and a nil *Tx.
func (r *Runner) Begin(ctx context.Context, opts ...Option) (context.Context, *Tx, error) {
	cfg := r.config(opts)
	var pc uintptr
	if cfg.name == "" {
		pc = callerPC(0)
	}
	sc, err := r.begin(ctx, &cfg, pc)
	if err != nil {
		return ctx, nil, err
	}
	return sc.ctx, &Tx{sc: sc}, nil
}

// errRolledBack is the rollback-only cause of a joined manual scope that
// was rolled back.
var errRolledBack = errors.New("tx: joined scope rolled back")

// Commit ends the scope. A scope that started the transaction runs its
// before-commit hooks, commits it (carrying the commit to an outcome as
// [Runner.Run] does), then runs the after-commit hooks; it returns
// [ErrTransient] (wrapping the driver's error) if MongoDB aborted the
// transaction with a transient error, [ErrUnexpectedRollback] if a joined
// scope marked it rollback-only and [ErrCommitUnknown] if the commit's
// outcome could not be learned. A scope that joined a transaction leaves
// the commit to its owner. If ctx is done, Commit aborts instead and
// returns an error wrapping ctx's. Commit on an ended Tx returns
// [ErrTxDone].
func (t *Tx) Commit(ctx context.Context) error {
	if t == nil || t.done {
		return ErrTxDone
	}
	t.done = true
	sc := t.sc
	switch sc.role {
	case roleWithout:
		return sc.endWithout(nil)
	case roleJoined:
		return sc.endJoined(nil)
	}
	again, err := sc.finish(sc.callHooks(), ctx)
	if err == errRolledBackAsAsked {
		return nil
	}
	if again {
		err = fmt.Errorf("%w (transaction %s): %w", ErrTransient, sc.name(), err)
		sc.endAborted(err, true)
	}
	return err
}

// callHooks runs the owner's before-commit hooks, with a panic's cleanup.
func (sc *scope) callHooks() error {
	return sc.call(func(context.Context) error { return nil })
}

// Rollback ends the scope without committing. A scope that started the
// transaction aborts it; a joined scope marks it rollback-only, so its
// owner will abort too. Rollback after Commit or Rollback does nothing,
// which makes `defer t.Rollback(ctx)` safe. The driver does not report
// abort failures (the server ends an abandoned transaction by itself), so
// the error is nil; Rollback returns one to read like database/sql's.
func (t *Tx) Rollback(ctx context.Context) error {
	if t == nil || t.done {
		return nil
	}
	t.done = true
	sc := t.sc
	switch sc.role {
	case roleWithout:
		_ = sc.endWithout(nil)
	case roleJoined:
		sc.st.markRollbackOnly(errRolledBack)
		sc.observe(EventRollbackOnly, errRolledBack, false)
		sc.close()
	default:
		sc.waitForJoined()
		sc.endAborted(nil, false)
	}
	return nil
}
