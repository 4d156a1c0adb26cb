package tx

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// role is what a scope is to its transaction.
type role uint8

const (
	roleWithout role = iota // runs without a transaction
	roleJoined              // takes part in a transaction it did not start
	roleOwner               // started the transaction: commits or aborts it
)

// scope is one call of [Runner.Run], [Do] or [Runner.Begin]: the engine
// that both the callback form and the manual form drive. [Runner.begin]
// decides, in one place, what a new scope is; the owner's attempt ends in
// [scope.finish]; [Runner.Run] is a retry loop around the two.
//
// A scope is also a frame of ctx (see [topScope]): the scopes inside it
// find their transaction through it.
type scope struct {
	cfg  config
	pc   uintptr
	role role
	st   *txState // nil for roleWithout

	parent    *scope // the innermost frame of the caller's ctx
	suspended bool   // a NotSupported marker: hides the frames further out

	caller context.Context // the ctx the scope was called with
	ctx    context.Context // the scope's: what the callback gets
	cancel context.CancelFunc
	start  time.Time

	// turn serialises the joined scopes entered with this frame's ctx:
	// a driver session is not safe for concurrent use. A joined scope holds
	// its frame's turn while it runs; an owner takes its own before it
	// commits or aborts, so it waits for them.
	turnOnce sync.Once
	turn     chan struct{}
	held     *scope // the frame whose turn this scope holds

	lastRetry       error // owner: what caused the last retry
	wasRollbackOnly bool  // joined: the transaction was already marked
	foreignRoot     bool  // joined: this scope found a driver-started transaction
}

func (sc *scope) name() string { return scopeName(sc.cfg.name, sc.pc) }

func (sc *scope) turnChan() chan struct{} {
	sc.turnOnce.Do(func() { sc.turn = make(chan struct{}, 1) })
	return sc.turn
}

// takeTurn waits until no other scope entered with frame's ctx runs.
func (sc *scope) takeTurn(ctx context.Context, frame *scope) error {
	if frame == nil {
		return nil
	}
	select {
	case frame.turnChan() <- struct{}{}:
		sc.held = frame
		return nil
	default:
	}
	select {
	case frame.turnChan() <- struct{}{}:
		sc.held = frame
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tx %s: waiting for another scope of the transaction: %w", sc.name(), ctx.Err())
	}
}

func (sc *scope) releaseTurn() {
	if f := sc.held; f != nil {
		sc.held = nil
		<-f.turn
	}
}

// begin starts a scope as cfg's propagation says. It is the only place
// where propagation is decided.
func (r *Runner) begin(ctx context.Context, cfg *config, pc uintptr) (*scope, error) {
	if cfg.err != nil {
		return nil, fmt.Errorf("tx %s: %w", scopeName(cfg.name, pc), cfg.err)
	}
	if r == nil || r.client == nil {
		return nil, errNoClient
	}
	st, frame := find(ctx, r.client)
	if err := refuseOtherClient(ctx, st, cfg, pc); err != nil {
		return nil, err
	}
	switch cfg.propagation {
	case Required:
		if st != nil {
			return join(ctx, st, frame, cfg, pc)
		}
		return r.start(ctx, cfg, pc)
	case RequiresNew:
		return r.start(ctx, cfg, pc)
	case Mandatory:
		if st == nil {
			return nil, fmt.Errorf("%w (scope %s)", ErrNoTransaction, scopeName(cfg.name, pc))
		}
		return join(ctx, st, frame, cfg, pc)
	case Supports:
		if st != nil {
			return join(ctx, st, frame, cfg, pc)
		}
		return without(ctx, cfg, pc), nil
	case Never:
		if st != nil {
			return nil, fmt.Errorf("%w (scope %s, transaction %s)", ErrTransactionExists, scopeName(cfg.name, pc), st.name())
		}
		return without(ctx, cfg, pc), nil
	case NotSupported:
		return without(suspend(ctx), cfg, pc), nil
	case Nested:
		return nil, fmt.Errorf("%w (scope %s)", ErrNestedNotSupported, scopeName(cfg.name, pc))
	default:
		return nil, fmt.Errorf("tx %s: unknown propagation %v", scopeName(cfg.name, pc), cfg.propagation)
	}
}

// refuseOtherClient fails a scope whose propagation depends on the
// transaction in ctx (joins it, or refuses to run in one) when the only
// live transaction there, st being nil, is another client's: it cannot be
// joined, and a transaction of the scope's own would commit apart from
// it. Scopes that ask to run apart (RequiresNew, NotSupported) run.
func refuseOtherClient(ctx context.Context, st *txState, cfg *config, pc uintptr) error {
	if st != nil {
		return nil
	}
	switch cfg.propagation {
	case Required, Mandatory, Supports, Never:
	default:
		return nil
	}
	other, _ := find(ctx, nil)
	if other == nil {
		return nil
	}
	if cfg.propagation == Never {
		return fmt.Errorf("%w (scope %s, transaction %s of another client)", ErrTransactionExists, scopeName(cfg.name, pc), other.name())
	}
	return fmt.Errorf("%w (scope %s, transaction %s)", ErrOtherClient, scopeName(cfg.name, pc), other.name())
}

// without starts a scope that runs without a transaction of its own.
func without(ctx context.Context, cfg *config, pc uintptr) *scope {
	sc := &scope{cfg: *cfg, pc: pc, role: roleWithout, caller: ctx, ctx: ctx}
	if cfg.timeout > 0 {
		sc.ctx, sc.cancel = context.WithTimeout(ctx, cfg.timeout)
	}
	if !sc.quiet() {
		sc.start = time.Now()
		sc.observe(EventBegin, nil, false)
	}
	return sc
}

// join starts a scope that takes part in st. frame is where st was found
// (nil for a transaction started with the driver, found on ctx's session).
func join(ctx context.Context, st *txState, frame *scope, cfg *config, pc uintptr) (*scope, error) {
	if cfg.strictJoin && cfg.set&^setTimeout != 0 {
		if err := checkJoin(st, cfg, pc); err != nil {
			return nil, err
		}
	}
	sc := &scope{cfg: *cfg, pc: pc, role: roleJoined, st: st, parent: topScope(ctx), caller: ctx, start: time.Now(), foreignRoot: frame == nil}
	if err := sc.takeTurn(ctx, sc.parent); err != nil {
		return nil, err
	}
	if !st.live() {
		sc.releaseTurn()
		return nil, fmt.Errorf("%w: transaction %s ended before scope %s could join it", ErrTxDone, st.name(), sc.name())
	}
	if cfg.timeout > 0 {
		ctx, sc.cancel = context.WithTimeout(ctx, cfg.timeout)
	}
	ctx = context.WithValue(ctx, scopeKey{}, sc)
	if mongo.SessionFromContext(ctx) != st.sess {
		ctx = mongo.NewSessionContext(ctx, st.sess)
	}
	sc.ctx = ctx
	sc.wasRollbackOnly, _, _ = st.rollbackOnly()
	sc.observe(EventBegin, nil, false)
	return sc, nil
}

// start starts a scope that owns a new transaction: on ctx's idle session
// if the caller put one there, else on a session of its own, preferably one
// the reaper killed (see reaper.take).
func (r *Runner) start(ctx context.Context, cfg *config, pc uintptr) (*scope, error) {
	st := &txState{client: r.client, budget: DefaultRetryBudget, attempt: 1, txnOpts: r.txnOpts, reaper: r.reaper}
	sc := &st.owner
	sc.cfg, sc.pc, sc.role, sc.st = *cfg, pc, roleOwner, st
	sc.parent, sc.caller, sc.start = topScope(ctx), ctx, time.Now()
	if cfg.set&(setReadConcern|setWriteConcern|setReadPref) != 0 {
		st.txnOpts = cfg.transactionOptions()
	}
	base := ctx
	if cfg.timeout > 0 {
		st.budget = cfg.timeout
		base, sc.cancel = context.WithTimeout(ctx, cfg.timeout)
	}
	if sess := idleSession(ctx, r.client); sess != nil {
		st.sess, st.borrowed = sess, true
	} else if sess := r.reaper.take(); sess != nil {
		st.sess, st.spare = sess, true
	} else {
		sess, err := r.client.StartSession()
		if err != nil {
			sc.closeCancel()
			err = fmt.Errorf("tx %s: start session: %w", sc.name(), err)
			sc.observe(EventAbort, err, true)
			return nil, err
		}
		st.sess = sess
	}
	if r.orphans != nil {
		// Before the transaction's first statement: a process killed
		// after it must have left the session's id behind.
		err := r.orphans.record(base, st.sess, !st.borrowed)
		for errors.Is(err, errParked) {
			// The registry keeps the session: another process may
			// still kill it. The driver hands out another one.
			var sess *mongo.Session
			if sess, err = r.client.StartSession(); err != nil {
				// st.sess is parked: ending it twice is harmless.
				err = fmt.Errorf("start session: %w", err)
				break
			}
			st.sess, st.spare = sess, false
			err = r.orphans.record(base, st.sess, true)
		}
		if err != nil {
			err = fmt.Errorf("tx %s: record the session for orphan reaping: %w", sc.name(), err)
			sc.endAborted(err, true)
			return nil, err
		}
		st.orphans = r.orphans
	}
	sc.ctx = mongo.NewSessionContext(context.WithValue(base, scopeKey{}, sc), st.sess)
	if err := sc.startTransaction(); err != nil {
		return nil, err
	}
	return sc, nil
}

// endLeftOpen ends, before the owner's next attempt, the transaction the
// last one may have left open on the server (see txState.leftOpen). Left
// to the next attempt's first statement, which supersedes it only once it
// reaches the server, it would hold its documents while the callback
// waits for anything before that statement (credits' lanes wait for this
// process's writers of the same accounts, which wait on the server for
// those very documents): until the server's lifetime limit. So the
// session is killed at once (bounded by the clean-up timeout), and the
// next attempt runs on it, superseding a late statement of the last one
// (leftOpen stays set: a next attempt that does not commit leaves its
// session to the reaper, which fences it). If the kill fails, the session
// goes to the reaper, which kills it as soon as the database answers, and
// the next attempt runs on another. A session borrowed from ctx stays
// (the caller owns it), as does one the reaper refuses (closed or full):
// the next attempt supersedes its transaction, as before.
func (sc *scope) endLeftOpen() error {
	st := sc.st
	if !st.leftOpen || st.borrowed || st.reaper == nil {
		return nil
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(sc.caller), sc.cfg.cleanup)
	err := st.reaper.killNow(kctx, st.sess)
	cancel()
	if err == nil {
		return nil
	}
	next := st.reaper.take()
	spare := next != nil
	if next == nil {
		if next, err = st.client.StartSession(); err != nil {
			return nil
		}
	}
	if !st.reaper.add(st.sess) {
		endSessions([]*mongo.Session{next})
		return nil
	}
	// Reaped before the registry hears that the transaction ended, as in
	// endSession.
	orphans := st.orphans
	st.unrecord()
	st.sess, st.leftOpen, st.spare = next, false, spare
	if orphans != nil {
		err := orphans.record(sc.ctx, st.sess, true)
		for errors.Is(err, errParked) {
			// As in start: the registry keeps it, take another.
			if st.sess, err = st.client.StartSession(); err != nil {
				err = fmt.Errorf("start session: %w", err)
				break
			}
			st.spare = false
			err = orphans.record(sc.ctx, st.sess, true)
		}
		if err != nil {
			err = fmt.Errorf("tx %s: record the session for orphan reaping: %w", sc.name(), err)
			sc.endAborted(err, true)
			return err
		}
		st.orphans = orphans
	}
	sc.ctx = mongo.NewSessionContext(sc.ctx, st.sess)
	return nil
}

// startTransaction starts the owner's next attempt.
func (sc *scope) startTransaction() error {
	st := sc.st
	sc.observe(EventBegin, nil, false)
	if err := st.sess.StartTransaction(st.txnOpts); err != nil {
		err = fmt.Errorf("tx %s: start transaction: %w", sc.name(), err)
		sc.endAborted(err, true)
		return err
	}
	st.active = true
	st.cleanupBy = time.Time{}
	return nil
}

// call runs fn on the scope's ctx, then, for an owner whose fn succeeded,
// its before-commit hooks. If fn panics (or calls runtime.Goexit), the
// scope ends first: an owner aborts, a joined scope marks the transaction
// rollback-only. Nothing is recovered: the panic keeps its stack.
func (sc *scope) call(fn func(context.Context) error) error {
	done := false
	defer func() {
		if !done {
			sc.abandon()
		}
	}()
	err := fn(sc.ctx)
	if err == nil && sc.role == roleOwner {
		err = sc.beforeCommit()
	}
	done = true
	return err
}

// abandon ends a scope whose callback or hook panicked.
func (sc *scope) abandon() {
	switch sc.role {
	case roleOwner:
		sc.waitForJoined()
		sc.endAborted(errPanicked, true)
	case roleJoined:
		sc.st.markRollbackOnly(errPanicked)
		sc.close()
	default:
		sc.close()
	}
}

// beforeCommit runs the owner's before-commit hooks, including those the
// hooks register.
func (sc *scope) beforeCommit() error {
	for {
		hs := sc.st.takeBeforeCommit()
		if len(hs) == 0 {
			return nil
		}
		for _, h := range hs {
			if err := h(sc.ctx); err != nil {
				return err
			}
		}
	}
}

// endWithout ends a scope that ran without a transaction.
func (sc *scope) endWithout(err error) error {
	sc.close()
	if !sc.quiet() {
		sc.observe(EventEnd, err, err != nil && isInfrastructure(err))
	}
	return err
}

// endJoined ends a joined scope whose callback returned err. A failure
// marks the transaction rollback-only, unless a rollback rule exempts it;
// the owner decides the rest.
func (sc *scope) endJoined(err error) error {
	defer sc.close()
	st := sc.st
	if err != nil && !sc.cfg.noRollback(err) {
		st.markRollbackOnly(err)
		sc.observe(EventRollbackOnly, err, isInfrastructure(err))
		return err
	}
	if !sc.wasRollbackOnly {
		if only, byInner, _ := st.rollbackOnly(); only && !byInner {
			// SetRollbackOnly inside this joined scope: its own failure.
			st.markRollbackOnly(nil)
			sc.observe(EventRollbackOnly, nil, false)
			if !sc.foreignRoot {
				return err
			}
		}
	}
	if sc.foreignRoot {
		// Nobody in txkit will end this transaction: say now what would
		// have been said at its commit.
		st.mu.Lock()
		hooked := st.foreignHook
		st.mu.Unlock()
		if hooked {
			err = fmt.Errorf("%w (scope %s)", ErrForeignTransaction, sc.name())
			sc.observe(EventEnd, err, false)
			return err
		}
		if only, _, cause := st.rollbackOnly(); only && err == nil {
			err = unexpectedRollback(st, cause)
			sc.observe(EventEnd, err, false)
			return err
		}
	}
	sc.observe(EventEnd, err, err != nil && isInfrastructure(err))
	return err
}

// finish ends an attempt of the owner whose callback returned err. It
// commits, aborts or reports that the attempt should be run again (again,
// with the cause in res). cancel is checked before the commit: a commit
// after it is done could not be told apart from one the caller still
// wants.
func (sc *scope) finish(err error, cancel context.Context) (again bool, res error) {
	st := sc.st
	sc.waitForJoined()

	if err != nil && !sc.cfg.noRollback(err) {
		st.abort(sc.caller, err)
		if st.attempt > 1 && errors.Is(err, context.DeadlineExceeded) && !errors.Is(sc.caller.Err(), context.Canceled) {
			// A deadline cut a retry: the budget ran out. Like the spec's
			// timeout error, it keeps the error that caused the retries.
			limit := "context deadline"
			if sc.cfg.timeout > 0 && !callerDeadlineFirst(sc.caller, sc.start.Add(st.budget)) {
				limit = "time budget " + st.budget.String()
			}
			err = &RetryError{Name: sc.name(), Attempts: st.attempt, Elapsed: time.Since(sc.start), Limit: limit, Err: errors.Join(sc.lastRetry, err), timeout: true}
		}
		if IsRetryable(err) {
			return true, err
		}
		sc.endAborted(err, isInfrastructure(err))
		return false, err
	}
	if only, byInner, cause := st.rollbackOnly(); only {
		st.abort(sc.caller, cause)
		if !byInner { // the owner asked for it: an intended rollback
			sc.endAborted(nil, false)
			if err == nil {
				err = errRolledBackAsAsked
			}
			return false, err
		}
		rb := unexpectedRollback(st, cause)
		if IsRetryable(cause) {
			return true, rb
		}
		sc.endAborted(rb, false)
		return false, rb
	}
	if !st.sess.TransactionRunning() {
		return false, sc.endedByCallback(err)
	}
	if cerr := contextErr(cancel, sc.ctx); cerr != nil {
		st.abort(sc.caller, cerr)
		cerr = fmt.Errorf("tx %s: not committed: %w", sc.name(), cerr)
		sc.endAborted(cerr, false)
		return false, cerr
	}
	again, cerr := sc.commit()
	switch {
	case cerr == nil:
		return false, err // nil, or an error a rollback rule let commit
	case again:
		return true, cerr
	case err != nil:
		return false, fmt.Errorf("%w (and the commit failed: %w)", err, cerr)
	}
	return false, cerr
}

// callerDeadlineFirst reports whether ctx's deadline comes before budget's.
func callerDeadlineFirst(ctx context.Context, budget time.Time) bool {
	dl, ok := ctx.Deadline()
	return ok && dl.Before(budget)
}

func contextErr(a, b context.Context) error {
	if err := a.Err(); err != nil {
		return err
	}
	return b.Err()
}

// endedByCallback ends a scope whose callback committed or aborted the
// transaction itself: it is not committed again (the convenient API's
// rule), and the hooks follow what the callback did.
func (sc *scope) endedByCallback(err error) error {
	st := sc.st
	st.active = false
	st.ended.Store(true)
	sc.endSession()
	if committedByCallback(st.sess) {
		sc.observe(EventCommit, nil, false)
		sc.complete(Committed)
	} else {
		sc.observe(EventAbort, nil, false)
		sc.complete(RolledBack)
	}
	sc.close()
	return err
}

// endAborted ends the owner's transaction without a commit (aborting it if
// it still runs) and reports err.
func (sc *scope) endAborted(err error, infra bool) {
	st := sc.st
	st.abort(sc.caller, err)
	st.ended.Store(true)
	sc.endSession()
	sc.observe(EventAbort, err, infra)
	sc.complete(RolledBack)
	sc.close()
}

// waitForJoined takes the owner's own turn: joined scopes entered with its
// ctx from other goroutines have returned, and no other starts.
func (sc *scope) waitForJoined() {
	if sc.held == nil {
		sc.turnChan() <- struct{}{}
		sc.held = sc
	}
}

// close releases what the scope holds.
func (sc *scope) close() {
	sc.releaseTurn()
	sc.closeCancel()
}

func (sc *scope) closeCancel() {
	if sc.cancel != nil {
		sc.cancel()
		sc.cancel = nil
	}
}

// complete runs the hooks of the transaction's last attempt: after-commit
// hooks if it committed, then after-completion hooks.
func (sc *scope) complete(o Outcome) {
	st := sc.st
	if !st.hasHooks() {
		return
	}
	h := st.takeHooks()
	ctx := hookContext(sc.caller)
	if o == Committed {
		for _, fn := range h.afterCommit {
			sc.runHook(func() { fn(ctx) })
		}
	}
	for _, fn := range h.afterCompletion {
		sc.runHook(func() { fn(ctx, o) })
	}
}

func (sc *scope) runHook(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			sc.observe(EventHookPanic, &PanicError{Value: p, Stack: debug.Stack()}, true)
		}
	}()
	fn()
}

func unexpectedRollback(st *txState, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w (transaction %s)", ErrUnexpectedRollback, st.name())
	}
	return fmt.Errorf("%w (transaction %s): %w", ErrUnexpectedRollback, st.name(), cause)
}

func (sc *scope) quiet() bool {
	_, quiet := sc.cfg.observer.(nopObserver)
	return quiet
}

// observe reports an event of the scope.
func (sc *scope) observe(kind EventKind, err error, infra bool) {
	if sc.quiet() {
		return
	}
	e := Event{
		Kind: kind, Name: sc.name(), Propagation: sc.cfg.propagation,
		Joined: sc.role == roleJoined, Transactional: sc.role != roleWithout,
		Attempt: 1, Err: err, Labels: errorLabels(err), Infrastructure: infra,
		Context: sc.caller,
	}
	if sc.st != nil && !sc.st.foreign {
		e.Attempt = sc.st.attempt
	}
	if kind != EventBegin {
		e.Duration = time.Since(sc.start)
	}
	sc.cfg.observer.Observe(e)
}

func (sc *scope) observeRetry(cause error, wait time.Duration, commitOnly bool) {
	if sc.quiet() {
		return
	}
	sc.cfg.observer.Observe(Event{
		Kind: EventRetry, Name: sc.name(), Propagation: sc.cfg.propagation, Transactional: true,
		Attempt: sc.st.attempt, Duration: time.Since(sc.start), Err: cause, Labels: errorLabels(cause),
		Backoff: wait, CommitOnly: commitOnly, Infrastructure: isInfrastructure(cause),
		Context: sc.caller,
	})
}
