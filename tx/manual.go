package tx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
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
// A Tx is not safe for concurrent use.
type Tx struct {
	st     *txState // the transaction; nil for a scope without one
	owner  bool     // st was started by this scope (not joined)
	cfg    config
	pc     uintptr
	start  time.Time
	parent context.Context // Begin's ctx: hooks run on it
	cancel context.CancelFunc
	done   bool
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
	if cfg.err != nil {
		return ctx, nil, fmt.Errorf("tx %s: %w", scopeName(cfg.name, pc), cfg.err)
	}
	if r == nil || r.client == nil {
		return ctx, nil, errNoClient
	}
	st := lookup(ctx, r.client)
	t := &Tx{cfg: cfg, pc: pc, start: time.Now(), parent: ctx}
	switch cfg.propagation {
	case Required:
		if st != nil {
			return t.join(ctx, st)
		}
		return r.beginNew(ctx, t)
	case RequiresNew:
		return r.beginNew(ctx, t)
	case Mandatory:
		if st == nil {
			return ctx, nil, fmt.Errorf("%w (scope %s)", ErrNoTransaction, t.name())
		}
		return t.join(ctx, st)
	case Supports:
		if st != nil {
			return t.join(ctx, st)
		}
		return t.without(ctx)
	case Never:
		if st != nil {
			return ctx, nil, fmt.Errorf("%w (scope %s, transaction %s)", ErrTransactionExists, t.name(), st.name())
		}
		return t.without(ctx)
	case NotSupported:
		return t.without(suspend(ctx))
	case Nested:
		return ctx, nil, fmt.Errorf("%w (scope %s)", ErrNestedNotSupported, t.name())
	default:
		return ctx, nil, fmt.Errorf("tx %s: unknown propagation %v", t.name(), cfg.propagation)
	}
}

func (t *Tx) name() string { return scopeName(t.cfg.name, t.pc) }

func (t *Tx) withTimeout(ctx context.Context) context.Context {
	if t.cfg.timeout > 0 {
		ctx, t.cancel = context.WithTimeout(ctx, t.cfg.timeout)
	}
	return ctx
}

func (r *Runner) beginNew(ctx context.Context, t *Tx) (context.Context, *Tx, error) {
	cfg := &t.cfg
	st := &txState{client: r.client, cfg: *cfg, pc: t.pc, start: t.start, budget: DefaultRetryBudget, parent: topState(ctx), attempt: 1}
	if cfg.timeout > 0 {
		st.budget = cfg.timeout
	}
	txnOpts := r.txnOpts
	if cfg.set&(setReadConcern|setWriteConcern|setReadPref) != 0 {
		txnOpts = cfg.transactionOptions()
	}
	sess, err := r.client.StartSession()
	if err != nil {
		err = fmt.Errorf("tx %s: start session: %w", st.name(), err)
		st.observe(EventAbort, err, true)
		return ctx, nil, err
	}
	st.sess = sess
	if err := sess.StartTransaction(txnOpts); err != nil {
		st.end(ctx)
		err = fmt.Errorf("tx %s: start transaction: %w", st.name(), err)
		st.observe(EventAbort, err, true)
		return ctx, nil, err
	}
	st.active = true
	st.observe(EventBegin, nil, false)
	t.st, t.owner = st, true
	tctx := t.withTimeout(ctx)
	return mongo.NewSessionContext(context.WithValue(tctx, stateKey{}, st), sess), t, nil
}

func (t *Tx) join(ctx context.Context, st *txState) (context.Context, *Tx, error) {
	if t.cfg.set&^setTimeout != 0 {
		if err := checkJoin(st, &t.cfg, t.pc); err != nil {
			return ctx, nil, err
		}
	}
	t.st = st
	ctx = t.withTimeout(ctx)
	if topState(ctx) != st {
		ctx = context.WithValue(ctx, stateKey{}, st)
	}
	if mongo.SessionFromContext(ctx) != st.sess {
		ctx = mongo.NewSessionContext(ctx, st.sess)
	}
	t.observe(EventBegin, nil)
	return ctx, t, nil
}

func (t *Tx) without(ctx context.Context) (context.Context, *Tx, error) {
	ctx = t.withTimeout(ctx)
	t.observe(EventBegin, nil)
	return ctx, t, nil
}

// observe reports an event of a joined or non-transactional manual scope
// (an owner reports through its txState).
func (t *Tx) observe(kind EventKind, err error) {
	if _, quiet := t.cfg.observer.(nopObserver); quiet {
		return
	}
	e := Event{
		Kind: kind, Name: t.name(), Propagation: t.cfg.propagation, Joined: t.st != nil, Transactional: t.st != nil,
		Attempt: 1, Err: err, Labels: errorLabels(err), Infrastructure: err != nil && isInfrastructure(err),
	}
	if t.st != nil {
		e.Attempt = t.st.attempt
	}
	if kind != EventBegin {
		e.Duration = time.Since(t.start)
	}
	t.cfg.observer.Observe(e)
}

func (t *Tx) finish() {
	t.done = true
	if t.cancel != nil {
		t.cancel()
	}
}

// errRolledBack is the rollback-only cause of a joined manual scope that
// was rolled back.
var errRolledBack = errors.New("tx: joined scope rolled back")

// Commit ends the scope. A scope that started the transaction commits it,
// retrying the commit while its outcome is unknown, then runs the
// after-commit hooks; it returns [ErrTransient] (wrapping the driver's
// error) if MongoDB aborted the transaction with a transient error, and
// [ErrUnexpectedRollback] if a joined scope marked it rollback-only. A
// scope that joined a transaction leaves the commit to its owner. If ctx is
// done, Commit aborts instead and returns an error wrapping ctx's. Commit
// on an ended Tx returns [ErrTxDone].
func (t *Tx) Commit(ctx context.Context) error {
	if t == nil || t.done {
		return ErrTxDone
	}
	defer t.finish()
	if !t.owner {
		t.observe(EventEnd, nil)
		return nil
	}
	st := t.st
	if only, byInner, cause := st.rollbackOnly(); only {
		st.abort(ctx)
		st.end(ctx)
		if !byInner {
			st.observe(EventAbort, nil, false)
			return nil
		}
		err := unexpectedRollback(st, cause)
		st.observe(EventAbort, err, false)
		return err
	}
	if err := ctx.Err(); err != nil {
		st.abort(ctx)
		st.end(ctx)
		err = fmt.Errorf("tx %s: not committed: %w", st.name(), err)
		st.observe(EventAbort, err, false)
		return err
	}
	again, err := st.commit(ctx, t.parent)
	if err == nil {
		return nil
	}
	st.end(ctx)
	if again {
		err = fmt.Errorf("%w (transaction %s): %w", ErrTransient, st.name(), err)
	}
	st.observe(EventAbort, err, true)
	return err
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
	defer t.finish()
	switch {
	case t.st == nil:
		t.observe(EventEnd, nil)
	case !t.owner:
		t.st.markRollbackOnly(errRolledBack)
		t.observe(EventRollbackOnly, errRolledBack)
	default:
		t.st.abort(ctx)
		t.st.end(ctx)
		t.st.observe(EventAbort, nil, false)
	}
	return nil
}
