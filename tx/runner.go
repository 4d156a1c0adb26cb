package tx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Runner runs functions in MongoDB transactions: the TxRunner. Create one
// per *mongo.Client with [NewRunner] (or get it from [Module]); it is safe
// for concurrent use. Every outermost scope gets a session of its own,
// ended when the scope returns.
type Runner struct {
	client  *mongo.Client
	cfg     config
	txnOpts *options.TransactionOptionsBuilder // cfg's, built once
}

// errNoClient is returned by a Runner that has no client, such as a zero
// Runner.
var errNoClient = errors.New("tx: Runner has no *mongo.Client; create it with NewRunner")

// NewRunner returns a Runner for client. opts are the defaults of every
// call; options given to a call override them.
func NewRunner(client *mongo.Client, opts ...Option) *Runner {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	cfg.set = 0 // only a call's own options count as its wishes when joining
	return &Runner{client: client, cfg: cfg, txnOpts: cfg.transactionOptions()}
}

// Client returns the client the Runner starts sessions on.
func (r *Runner) Client() *mongo.Client {
	if r == nil {
		return nil
	}
	return r.client
}

// config returns the runner's defaults overridden by opts.
func (r *Runner) config(opts []Option) config {
	if len(opts) == 0 && r != nil && r.cfg.observer != nil {
		return r.cfg // the common case, kept free of allocations
	}
	return r.configWith(opts)
}

// configWith is config's slow path: applying options through an interface
// makes the config escape to the heap.
func (r *Runner) configWith(opts []Option) config {
	var cfg config
	if r == nil || r.cfg.observer == nil {
		cfg = defaultConfig()
	} else {
		cfg = r.cfg
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	return cfg
}

// Run runs fn in a transaction, as the propagation mode says (the default,
// [Required], joins the transaction in ctx or starts one). fn must use the
// ctx it is given for every collection call: that ctx carries the session.
//
// The outermost scope commits when fn returns nil and aborts when it
// returns an error, panics (the panic continues after the abort) or when
// ctx is done before the commit. It re-runs fn when MongoDB labels an error
// TransientTransactionError and retries the commit alone on
// UnknownTransactionCommitResult, so fn must be re-runnable: put effects
// that must happen once in [AfterCommit].
//
// An error returned by fn is returned unchanged. Other errors say what
// failed: [ErrUnexpectedRollback], a [*RetryError], [ErrNoTransaction] and
// the rest of this package's errors, or a failure of MongoDB.
func (r *Runner) Run(ctx context.Context, fn func(ctx context.Context) error, opts ...Option) error {
	cfg := r.config(opts)
	var pc uintptr
	if cfg.name == "" {
		pc = callerPC(0)
	}
	if err := r.run(ctx, &cfg, pc, fn); err != errRolledBackAsAsked {
		return err
	}
	return nil
}

// Do is [Runner.Run] for a function with a result: it returns the result of
// the attempt that committed, or the zero T and the error. When nothing
// committed because the outermost scope's own callback called
// [SetRollbackOnly], there is no result to return: the error wraps
// [ErrUnexpectedRollback]. (Run returns nil then: its caller wrote the
// callback that asked for the rollback, and gets no value that would
// pretend otherwise.)
func Do[T any](ctx context.Context, r *Runner, fn func(ctx context.Context) (T, error), opts ...Option) (T, error) {
	cfg := r.config(opts)
	var pc uintptr
	if cfg.name == "" {
		pc = callerPC(0)
	}
	var res T
	err := r.run(ctx, &cfg, pc, func(ctx context.Context) error {
		v, err := fn(ctx)
		res = v
		return err
	})
	if err == errRolledBackAsAsked {
		err = fmt.Errorf("%w (scope %s): its callback called SetRollbackOnly, so nothing was committed and there is no result", ErrUnexpectedRollback, scopeName(cfg.name, pc))
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return res, nil
}

func (r *Runner) run(ctx context.Context, cfg *config, pc uintptr, fn func(context.Context) error) error {
	if cfg.err != nil {
		return fmt.Errorf("tx %s: %w", scopeName(cfg.name, pc), cfg.err)
	}
	if r == nil || r.client == nil {
		return errNoClient
	}
	if fn == nil {
		return fmt.Errorf("tx %s: nil callback", scopeName(cfg.name, pc))
	}
	st := lookup(ctx, r.client)
	switch cfg.propagation {
	case Required:
		if st != nil {
			return join(ctx, st, cfg, pc, fn)
		}
		return r.runNew(ctx, cfg, pc, fn)
	case RequiresNew:
		return r.runNew(ctx, cfg, pc, fn)
	case Mandatory:
		if st == nil {
			return fmt.Errorf("%w (scope %s)", ErrNoTransaction, scopeName(cfg.name, pc))
		}
		return join(ctx, st, cfg, pc, fn)
	case Supports:
		if st != nil {
			return join(ctx, st, cfg, pc, fn)
		}
		return runWithout(ctx, cfg, pc, fn)
	case Never:
		if st != nil {
			return fmt.Errorf("%w (scope %s, transaction %s)", ErrTransactionExists, scopeName(cfg.name, pc), st.name())
		}
		return runWithout(ctx, cfg, pc, fn)
	case NotSupported:
		return runWithout(suspend(ctx), cfg, pc, fn)
	case Nested:
		return fmt.Errorf("%w (scope %s)", ErrNestedNotSupported, scopeName(cfg.name, pc))
	default:
		return fmt.Errorf("tx %s: unknown propagation %v", scopeName(cfg.name, pc), cfg.propagation)
	}
}

// suspend returns a ctx in which no transaction is visible: it carries no
// session, and a marker hides the states further out.
func suspend(ctx context.Context) context.Context {
	if mongo.SessionFromContext(ctx) == nil && activeState(ctx) == nil {
		return ctx
	}
	ctx = mongo.NewSessionContext(ctx, nil)
	return context.WithValue(ctx, stateKey{}, &txState{suspended: true, parent: topState(ctx)})
}

// runWithout runs fn with no transaction of its own.
func runWithout(ctx context.Context, cfg *config, pc uintptr, fn func(context.Context) error) error {
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	obs := cfg.observer
	_, quiet := obs.(nopObserver)
	var start time.Time
	if !quiet {
		start = time.Now()
		obs.Observe(Event{Kind: EventBegin, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Attempt: 1})
	}
	err := fn(ctx)
	if !quiet {
		obs.Observe(Event{
			Kind: EventEnd, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Attempt: 1,
			Duration: time.Since(start), Err: err, Labels: errorLabels(err), Infrastructure: err != nil && isInfrastructure(err),
		})
	}
	return err
}

// join runs fn as part of the transaction st: exactly once per attempt of
// st's owner. A failure marks st rollback-only; the owner decides the rest.
func join(ctx context.Context, st *txState, cfg *config, pc uintptr, fn func(context.Context) error) (err error) {
	if cfg.set&^setTimeout != 0 {
		if err := checkJoin(st, cfg, pc); err != nil {
			return err
		}
	}
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	// Usually ctx already is the owner's; after a scope of another client
	// it is not, and st must become the innermost again.
	if topState(ctx) != st {
		ctx = context.WithValue(ctx, stateKey{}, st)
	}
	if mongo.SessionFromContext(ctx) != st.sess {
		ctx = mongo.NewSessionContext(ctx, st.sess)
	}

	obs := cfg.observer
	_, quiet := obs.(nopObserver)
	var start time.Time
	if !quiet {
		start = time.Now()
		obs.Observe(Event{Kind: EventBegin, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Joined: true, Transactional: true, Attempt: st.attempt})
	}
	wasRollbackOnly, _, _ := st.rollbackOnly()

	done := false
	defer func() {
		if !done { // a panic or runtime.Goexit: the transaction must not commit
			st.markRollbackOnly(errPanicked)
		}
	}()
	err = fn(ctx)
	done = true

	if err != nil {
		st.markRollbackOnly(err)
		if !quiet {
			obs.Observe(Event{
				Kind: EventRollbackOnly, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Joined: true, Transactional: true,
				Attempt: st.attempt, Duration: time.Since(start), Err: err, Labels: errorLabels(err), Infrastructure: isInfrastructure(err),
			})
		}
		return err
	}
	if !wasRollbackOnly {
		if only, byInner, _ := st.rollbackOnly(); only && !byInner {
			// SetRollbackOnly inside this joined scope: its own failure.
			st.markRollbackOnly(nil)
			if !quiet {
				obs.Observe(Event{
					Kind: EventRollbackOnly, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Joined: true, Transactional: true,
					Attempt: st.attempt, Duration: time.Since(start),
				})
			}
			return nil
		}
	}
	if !quiet {
		obs.Observe(Event{
			Kind: EventEnd, Name: scopeName(cfg.name, pc), Propagation: cfg.propagation, Joined: true, Transactional: true,
			Attempt: st.attempt, Duration: time.Since(start),
		})
	}
	return nil
}

// runNew runs fn as the outermost scope of a new transaction on a session
// of its own, retrying by MongoDB's convenient-transaction rules.
func (r *Runner) runNew(ctx context.Context, cfg *config, pc uintptr, fn func(context.Context) error) error {
	st := &txState{client: r.client, cfg: *cfg, pc: pc, start: time.Now(), budget: DefaultRetryBudget, parent: topState(ctx)}
	if cfg.timeout > 0 {
		st.budget = cfg.timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	txnOpts := r.txnOpts
	if cfg.set&(setReadConcern|setWriteConcern|setReadPref) != 0 {
		txnOpts = cfg.transactionOptions()
	}

	sess, err := r.client.StartSession()
	if err != nil {
		err = fmt.Errorf("tx %s: start session: %w", st.name(), err)
		st.attempt = 1
		st.observe(EventAbort, err, true)
		return err
	}
	st.sess = sess
	tctx := mongo.NewSessionContext(context.WithValue(ctx, stateKey{}, st), sess)

	for {
		st.attempt++
		if st.attempt > 1 {
			st.resetAttempt()
		}
		st.observe(EventBegin, nil, false)

		if err := sess.StartTransaction(txnOpts); err != nil {
			st.end(ctx)
			err = fmt.Errorf("tx %s: start transaction: %w", st.name(), err)
			st.observe(EventAbort, err, true)
			return err
		}
		st.active = true

		err := st.call(ctx, tctx, fn)
		if err == nil {
			if only, byInner, cause := st.rollbackOnly(); only {
				if !byInner { // the owner asked for it: an intended rollback
					st.abort(ctx)
					st.end(ctx)
					st.observe(EventAbort, nil, false)
					return errRolledBackAsAsked
				}
				err = unexpectedRollback(st, cause)
			}
		}
		if err != nil {
			st.abort(ctx)
			if IsRetryable(err) {
				if retryErr := st.retry(ctx, st.attempt, err, false); retryErr != nil {
					st.end(ctx)
					st.observe(EventAbort, retryErr, true)
					return retryErr
				}
				continue
			}
			st.end(ctx)
			st.observe(EventAbort, err, isInfrastructure(err))
			return err
		}

		// The driver's rule too: a commit after ctx is done could not be
		// told apart from one the caller still wants.
		if ctx.Err() != nil {
			st.abort(ctx)
			st.end(ctx)
			err := fmt.Errorf("tx %s: not committed: %w", st.name(), ctx.Err())
			st.observe(EventAbort, err, false)
			return err
		}

		again, err := st.commit(ctx, ctx)
		if err == nil {
			return nil
		}
		if again {
			if retryErr := st.retry(ctx, st.attempt, err, false); retryErr != nil {
				st.end(ctx)
				st.observe(EventAbort, retryErr, true)
				return retryErr
			}
			continue
		}
		st.end(ctx)
		st.observe(EventAbort, err, true)
		return err
	}
}

// call runs fn. If fn panics (or calls runtime.Goexit), the transaction is
// aborted and the session ended before the panic goes on: nothing is
// recovered, so the panic keeps its original stack.
func (st *txState) call(ctx, tctx context.Context, fn func(context.Context) error) error {
	done := false
	defer func() {
		if !done {
			st.abort(ctx)
			st.end(ctx)
			st.observe(EventAbort, errPanicked, true)
		}
	}()
	err := fn(tctx)
	done = true
	return err
}

// commit commits the transaction, retrying the commit alone while MongoDB
// says its outcome is unknown. On success it ends the session and runs the
// after-commit hooks on hookCtx. On failure, again reports whether the
// whole transaction may be run again (TransientTransactionError).
func (st *txState) commit(ctx, hookCtx context.Context) (again bool, err error) {
	// A commit that has begun is not interrupted by the caller's
	// cancellation: its outcome would be unknown.
	cctx := context.WithoutCancel(ctx)
	if st.cfg.timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(cctx, st.start.Add(st.cfg.timeout))
		defer cancel()
	}
	for commits := 1; ; commits++ {
		err := st.sess.CommitTransaction(cctx)
		if err == nil {
			st.active = false
			st.ended.Store(true)
			st.sess.EndSession(cctx) // no transaction left: no I/O
			st.observe(EventCommit, nil, false)
			st.runHooks(hookCtx)
			return false, nil
		}
		// Whatever happens next, this transaction is over for the driver:
		// it is not aborted after a failed commit (the spec forbids it).
		if hasLabel(err, labelTransient) {
			st.active = false
			return true, err
		}
		if !hasLabel(err, labelUnknownCommit) || isMaxTimeMSExpired(err) {
			if commitOutcomeUnknown(err) {
				return false, commitUnknown(st, err)
			}
			return false, fmt.Errorf("tx %s: commit: %w", st.name(), err)
		}
		if retryErr := st.retry(ctx, commits, err, true); retryErr != nil {
			return false, commitUnknown(st, retryErr)
		}
	}
}

// retry decides whether another attempt fits in the limits and waits for
// it. attempts is the callback's attempts, or a commit's sends when
// commitOnly. It returns nil to go on, else the error that ends the scope.
func (st *txState) retry(ctx context.Context, attempts int, cause error, commitOnly bool) error {
	var wait time.Duration
	if !commitOnly {
		wait = st.cfg.backoff.delay(attempts, rand.Float64())
	}
	elapsed := time.Since(st.start)
	limit := ""
	switch {
	case st.cfg.maxAttempts > 0 && attempts >= st.cfg.maxAttempts:
		limit = fmt.Sprintf("attempt limit %d", st.cfg.maxAttempts)
	case elapsed+wait >= st.budget:
		limit = "time budget " + st.budget.String()
	}
	if limit == "" {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			limit = "context deadline"
		}
	}
	if limit != "" {
		return &RetryError{Name: st.name(), Attempts: st.attempt, Elapsed: elapsed, Limit: limit, Err: cause}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tx %s: stopped retrying: %w (last error: %w)", st.name(), err, cause)
	}
	st.observeRetry(cause, wait, commitOnly)
	if err := sleep(ctx, wait); err != nil {
		return fmt.Errorf("tx %s: stopped retrying: %w (last error: %w)", st.name(), err, cause)
	}
	return nil
}

// abort aborts the transaction if one is active, on a context that outlives
// the caller's cancellation but not cleanupTimeout.
func (st *txState) abort(ctx context.Context) {
	if !st.active {
		return
	}
	st.active = false
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// The driver ignores the server's answer to abortTransaction, as the
	// spec says; an error here only means there was nothing to abort.
	_ = st.sess.AbortTransaction(actx)
}

// end ends the session (aborting a transaction still in progress, such as
// one whose commit timed out) and marks the state finished.
func (st *txState) end(ctx context.Context) {
	st.ended.Store(true)
	st.active = false
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	st.sess.EndSession(ectx)
}

// runHooks runs the after-commit hooks on ctx, the owner's caller's.
func (st *txState) runHooks(ctx context.Context) {
	hooks := st.takeHooks()
	for _, h := range hooks {
		st.runHook(ctx, h)
	}
}

func (st *txState) runHook(ctx context.Context, h func(context.Context)) {
	defer func() {
		if p := recover(); p != nil {
			st.observe(EventHookPanic, &PanicError{Value: p, Stack: debug.Stack()}, true)
		}
	}()
	h(ctx)
}

// commitOutcomeUnknown reports whether a failed commit may have applied:
// MongoDB said so (UnknownTransactionCommitResult), or no answer arrived
// (network error, timeout, cancellation).
func commitOutcomeUnknown(err error) bool {
	return hasLabel(err, labelUnknownCommit) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) || isContextError(err)
}

func commitUnknown(st *txState, err error) error {
	return fmt.Errorf("%w (transaction %s): %w", ErrCommitUnknown, st.name(), err)
}

func unexpectedRollback(st *txState, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w (transaction %s)", ErrUnexpectedRollback, st.name())
	}
	return fmt.Errorf("%w (transaction %s): %w", ErrUnexpectedRollback, st.name(), cause)
}

// observe reports an event of the owner scope.
func (st *txState) observe(kind EventKind, err error, infra bool) {
	if _, quiet := st.cfg.observer.(nopObserver); quiet {
		return
	}
	e := Event{
		Kind: kind, Name: st.name(), Propagation: st.cfg.propagation, Transactional: true,
		Attempt: st.attempt, Err: err, Labels: errorLabels(err), Infrastructure: infra,
	}
	if kind != EventBegin {
		e.Duration = time.Since(st.start)
	}
	st.cfg.observer.Observe(e)
}

func (st *txState) observeRetry(cause error, wait time.Duration, commitOnly bool) {
	if _, quiet := st.cfg.observer.(nopObserver); quiet {
		return
	}
	st.cfg.observer.Observe(Event{
		Kind: EventRetry, Name: st.name(), Propagation: st.cfg.propagation, Transactional: true,
		Attempt: st.attempt, Duration: time.Since(st.start), Err: cause, Labels: errorLabels(cause),
		Backoff: wait, CommitOnly: commitOnly, Infrastructure: isInfrastructure(cause),
	})
}
