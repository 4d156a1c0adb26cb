package tx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Runner runs functions in MongoDB transactions: the TxRunner. Create one
// per *mongo.Client with [NewRunner] (or get it from [Module]); it is safe
// for concurrent use. Every outermost scope gets a session of its own,
// ended when the scope returns, unless its ctx carries an idle session of
// the same client, which it then uses and leaves open.
type Runner struct {
	client  *mongo.Client
	cfg     config
	txnOpts *options.TransactionOptionsBuilder // cfg's, built once
	reaper  *reaper
	orphans *registry // nil without WithOrphanReaping

	// closing holds a token while a Close runs: one at a time, and one
	// that waits gives up when its ctx ends (see Close).
	closing chan struct{}
}

// errNoClient is returned by a Runner that has no client, such as a zero
// Runner.
var errNoClient = errors.New("tx: Runner has no *mongo.Client; create it with NewRunner")

// NewRunner returns a Runner for client. opts are the defaults of every
// call; options given to a call override them.
func NewRunner(client *mongo.Client, opts ...Option) *Runner {
	r := newRunner(client, opts)
	if r.orphans != nil {
		r.orphans.start()
	}
	return r
}

// newRunner is NewRunner without starting the orphan reaping's goroutine.
func newRunner(client *mongo.Client, opts []Option) *Runner {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	cfg.set = 0 // only a call's own options count as its wishes when joining
	r := &Runner{client: client, cfg: cfg, txnOpts: cfg.transactionOptions(), closing: make(chan struct{}, 1)}
	if client != nil {
		fenceDB := fenceDatabase
		if cfg.orphans != nil && cfg.err == nil {
			r.orphans = newRegistry(*cfg.orphans)
			fenceDB = cfg.orphans.Collection.Database().Name()
		}
		r.reaper = newReaper(client, client.Database(fenceDB).Collection(fenceCollection))
	}
	r.cfg.orphans = nil // nothing for a call to copy
	return r
}

// Close stops the runner's reaper. The reaper kills, on the server, the
// sessions of transactions that the runner had to leave open there: an
// abort that the database did not confirm within the clean-up time
// ([WithCleanupTimeout]), an attempt cut by its ctx or a network error
// (a statement still on its way may start the transaction after the
// abort), or a commit whose outcome stayed unknown. It sends killSessions
// for them as soon as the database answers again, so that what they hold
// is released long before the server's transaction lifetime limit; then
// it starts on each a transaction that reads nothing, and kills them
// again (a fence): that transaction's number makes the server refuse a
// late statement of the killed one. It keeps them for the runner's next transactions, whose
// transaction numbers end what a late statement starts should the fence
// have failed; its goroutine runs only while such sessions wait. Close
// ends the sessions kept.
//
// Close makes one last attempt, bounded by ctx, to kill (and fence) the
// sessions still waiting, and those kept whose fence did not take (no
// next transaction will supersede their cut one): it tries the kill again
// while it gets no answer (a broken connection, a cleared pool), and
// fences again a session whose fence's read got no answer, its own
// included, since that read may still reach the server. It returns the
// error if that failed, or if the server refused a fence (the server then
// ends their transactions at its lifetime limit; a later Close tries
// again). Call it
// before disconnecting the client; [Module] does, when the application
// stops. Transactions run after Close leave such sessions to the server,
// as if there were no reaper.
//
// With [WithOrphanReaping], Close also stops the renewal of the process's
// lease (waiting, within ctx, for a renewal in flight, which cut could
// still reach the server and create the lease again after Close removed
// it), the sweeps and the re-kills of the sessions they reaped, and
// removes the process's registry documents if nothing was left open and
// no transaction runs. It returns an error if it could not remove them,
// or if a write of them got no answer (a renewal cut when ctx ended, a
// record cut by its Run's ctx): that write may still reach the server
// and create a document again; a later Close removes it. It does not
// wait for
// running transactions: while one runs, or if something was left open,
// it keeps the lease and the records, so that if the process dies the
// next process of its instance (at once) or another process (once the
// lease, no longer renewed, expires) kills what is left. A transaction
// that would start after Close fails with [ErrClosed].
//
// Calls of Close run one at a time, each on what the calls before it
// left: a Close that finds sessions a previous one could not kill tries
// to kill them again, and reports the failure again if it fails; the
// records are removed only by a Close that leaves nothing open. A Close
// whose ctx ends while it waits for another returns ctx's error.
func (r *Runner) Close(ctx context.Context) error {
	if r == nil || r.reaper == nil {
		return nil
	}
	select {
	case r.closing <- struct{}{}:
	case <-ctx.Done():
		// Another Close is still at it (it tries the kill again until
		// its own ctx ends): this one made no attempt of its own.
		return fmt.Errorf("tx: close: waiting for another Close: %w", ctx.Err())
	}
	defer func() { <-r.closing }()
	err := r.reaper.close(ctx)
	var rerr error
	if r.orphans != nil {
		rerr = r.orphans.close(ctx, err == nil, r.reaper.leftOpen)
	}
	if err != nil {
		err = fmt.Errorf("tx: kill sessions left open: %w", err)
	}
	if rerr != nil {
		rerr = fmt.Errorf("tx: close: orphan reaping: %w", rerr)
	}
	return errors.Join(err, rerr)
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
// returns an error (unless [WithNoRollbackFor] exempts it), panics (the
// panic continues after the abort) or when ctx is done before the commit.
// It re-runs fn when MongoDB labels an error TransientTransactionError, or
// fn returns a [Retryable] error, and retries the commit alone on
// UnknownTransactionCommitResult, so fn must be re-runnable: put effects
// that must happen once in [AfterCommit]. If fn commits or aborts the
// transaction itself (through the session), Run does not commit again.
//
// A commit once sent is carried to an outcome whatever ctx does; if the
// outcome cannot be learned, Run returns an error matching
// [ErrCommitUnknown].
//
// An error returned by fn is returned unchanged. Other errors say what
// failed: [ErrUnexpectedRollback], a [*RetryError], [ErrCommitUnknown],
// [ErrNoTransaction] and the rest of this package's errors, or a failure of
// MongoDB.
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
// pretend otherwise.) With [WithNoRollbackFor], an exempted error commits
// and Do returns the zero T with it.
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

// run is the callback form: a scope, and for an owner, a retry loop
// around its attempts.
func (r *Runner) run(ctx context.Context, cfg *config, pc uintptr, fn func(context.Context) error) error {
	if fn == nil {
		return fmt.Errorf("tx %s: nil callback", scopeName(cfg.name, pc))
	}
	sc, err := r.begin(ctx, cfg, pc)
	if err != nil {
		return err
	}
	switch sc.role {
	case roleWithout:
		return sc.endWithout(sc.call(fn))
	case roleJoined:
		return sc.endJoined(sc.call(fn))
	}
	for {
		again, err := sc.finish(sc.call(fn), sc.ctx)
		if !again {
			return err
		}
		sc.lastRetry = err
		if rerr := sc.retry(err); rerr != nil {
			sc.endAborted(rerr, true)
			return rerr
		}
		sc.st.attempt++
		sc.st.resetAttempt()
		if err := sc.endLeftOpen(); err != nil {
			return err
		}
		if err := sc.startTransaction(); err != nil {
			return err
		}
		// Joined scopes waiting for the owner's turn now join this attempt.
		sc.releaseTurn()
	}
}

// retry decides whether another attempt of the whole transaction fits in
// the limits and waits for it. It returns nil to go on, else the error that
// ends the scope.
func (sc *scope) retry(cause error) error {
	st := sc.st
	wait := sc.cfg.backoff.delay(st.attempt, rand.Float64())
	elapsed := time.Since(sc.start)
	limit, timeout := "", false
	switch {
	case sc.cfg.maxAttempts > 0 && st.attempt >= sc.cfg.maxAttempts:
		limit = attemptLimit(sc.cfg.maxAttempts)
	case elapsed+wait >= st.budget:
		limit, timeout = "time budget "+st.budget.String(), true
	}
	if limit == "" {
		if dl, ok := sc.caller.Deadline(); ok && time.Until(dl) <= wait {
			limit, timeout = "context deadline", true
		}
	}
	if limit != "" {
		var re *RetryError
		if errors.As(cause, &re) {
			return cause
		}
		return &RetryError{Name: sc.name(), Attempts: st.attempt, Elapsed: elapsed, Limit: limit, Err: cause, timeout: timeout}
	}
	if err := sc.caller.Err(); err != nil {
		return fmt.Errorf("tx %s: stopped retrying: %w (last error: %w)", sc.name(), err, cause)
	}
	sc.observeRetry(cause, wait, false)
	if err := sleep(sc.caller, wait); err != nil {
		return fmt.Errorf("tx %s: stopped retrying: %w (last error: %w)", sc.name(), err, cause)
	}
	return nil
}
