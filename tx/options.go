package tx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Defaults of a [Runner] that is given no options.
const (
	// DefaultRetryBudget bounds how long a scope keeps retrying when no
	// [WithTimeout] is given: MongoDB's convenient-transaction limit.
	DefaultRetryBudget = 120 * time.Second

	// DefaultBackoffInitial, DefaultBackoffMultiplier and DefaultBackoffMax
	// shape the wait before each retry of the callback: the bound starts at
	// DefaultBackoffInitial, grows by DefaultBackoffMultiplier per retry up
	// to DefaultBackoffMax, and the actual wait is a random fraction of it.
	DefaultBackoffInitial    = 5 * time.Millisecond
	DefaultBackoffMultiplier = 1.5
	DefaultBackoffMax        = 500 * time.Millisecond

	// DefaultCleanupTimeout bounds a scope's clean-up when no
	// [WithCleanupTimeout] is given: see there.
	DefaultCleanupTimeout = 10 * time.Second
)

// An Option configures a [Runner] (as a default for every call) or a single
// call of [Runner.Run], [Do] or [Runner.Begin] (overriding the default).
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// optionSet records which options a call set explicitly, so that a joined
// scope can tell its own wishes from the runner's defaults.
type optionSet uint8

const (
	setTimeout optionSet = 1 << iota
	setMaxAttempts
	setBackoff
	setReadConcern
	setWriteConcern
	setReadPref
)

type config struct {
	name         string
	propagation  Propagation
	timeout      time.Duration
	maxAttempts  int
	backoff      Backoff
	readConcern  *readconcern.ReadConcern
	writeConcern *writeconcern.WriteConcern
	readPref     *readpref.ReadPref
	observer     Observer
	set          optionSet
	err          error
	strictJoin   bool
	noRollbackIf []func(error) bool
	cleanup      time.Duration
	orphans      *OrphanReaping // runner-wide only
}

// noRollback reports whether a rollback rule lets err commit.
func (c *config) noRollback(err error) bool {
	for _, f := range c.noRollbackIf {
		if f(err) {
			return true
		}
	}
	return false
}

func defaultConfig() config {
	return config{
		propagation:  Required,
		backoff:      Backoff{Initial: DefaultBackoffInitial, Multiplier: DefaultBackoffMultiplier, Max: DefaultBackoffMax},
		readConcern:  readconcern.Snapshot(),
		writeConcern: writeconcern.Majority(),
		readPref:     readpref.Primary(),
		observer:     nopObserver{},
		cleanup:      DefaultCleanupTimeout,
	}
}

// WithName names the scope in events, logs and errors. Without it the name
// is the calling function's, e.g. "credits.(*Service).Deduct".
func WithName(name string) Option {
	return optionFunc(func(c *config) { c.name = name })
}

// WithPropagation sets how the scope relates to a transaction already in
// ctx. The default is [Required].
func WithPropagation(p Propagation) Option {
	return optionFunc(func(c *config) { c.propagation = p })
}

// WithTimeout bounds the whole scope: every attempt of the callback, the
// waits between them and the commit. The callback's ctx carries the
// deadline. Zero, the default, adds no deadline; retries then stop after
// [DefaultRetryBudget].
//
// A commit that the deadline cuts is never followed by abortTransaction:
// it may have applied. The scope then returns [ErrCommitUnknown]; the
// server finishes the transaction either way (if it was not committed, it
// is aborted when its session is reused or when it reaches the server's
// transaction lifetime limit).
//
// In a scope that joins an enclosing transaction, it bounds only that
// scope's callback; the transaction's budget is its owner's.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		c.timeout = max(d, 0)
		c.set |= setTimeout
	})
}

// WithDeadlineOf bounds the scope, commit included, by ctx's deadline: it
// is [WithTimeout] of the time left until that deadline, or no option when
// ctx has none. A library whose callers pass deadlines uses it so that a
// call returns soon after its deadline instead of when the database
// answers: a commit the deadline cuts is reported as [ErrCommitUnknown]
// (without it, a commit once sent is carried to its outcome on the
// runner's own budget, whatever the caller's ctx does).
func WithDeadlineOf(ctx context.Context) Option {
	dl, ok := ctx.Deadline()
	if !ok {
		return optionFunc(func(*config) {})
	}
	// WithTimeout(0) would mean no deadline: a passed one is a millisecond.
	return WithTimeout(max(time.Until(dl), time.Millisecond))
}

// WithCleanupTimeout bounds a scope's clean-up: the abortTransaction and
// the end of the session that run after the callback failed, after ctx
// ended or after a panic. Clean-up ignores ctx's cancellation (a
// transaction left open holds its documents), so this is how long a call
// may outlive ctx's deadline when the database stops answering at that
// moment; the default is [DefaultCleanupTimeout]. Abort and end-session
// share the one bound. A transaction whose abort could not be confirmed in
// that time is handed to the runner's reaper (see [Runner.Close]), which
// kills its session on the server as soon as the database answers again.
// Zero or less keeps the default.
//
// A server that answers aborts in milliseconds needs far less than the
// default: an HTTP service sets it from its request timeout so that a
// handler never outlives that timeout by more than the clean-up.
func WithCleanupTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.cleanup = d
		}
	})
}

// WithMaxAttempts bounds two counts, each at n: how many times the
// outermost scope runs the callback (each run is one transaction), and how
// many times it calls the driver's commit for one transaction while the
// outcome is unknown (UnknownTransactionCommitResult). The driver itself
// resends a commit once after a retryable error (a network error, a
// primary step-down) inside one such call, as the transactions
// specification requires; that resend is not counted, so the server may
// see up to 2n commitTransaction commands for one transaction. Zero, the
// default, means no limit other than the time budget (see [WithTimeout]).
//
// A scope that joins a transaction ignores it: only the outermost scope
// retries (see [WithStrictJoin]).
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) {
		c.maxAttempts = max(n, 0)
		c.set |= setMaxAttempts
	})
}

// Backoff shapes the wait before each retry of the callback. Retry k
// (k = 1, 2, …) waits a uniformly random duration in
// [0, min(Initial × Multiplier^(k-1), Max)). Zero fields take the defaults
// ([DefaultBackoffInitial], [DefaultBackoffMultiplier], [DefaultBackoffMax]).
type Backoff struct {
	Initial    time.Duration
	Multiplier float64
	Max        time.Duration
}

// WithBackoff sets the wait between retries of the callback.
func WithBackoff(b Backoff) Option {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Multiplier < 1 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	return optionFunc(func(c *config) {
		c.backoff = b
		c.set |= setBackoff
	})
}

// WithTransactionOptions sets the read concern, write concern and read
// preference of the transaction; fields it leaves unset keep their previous
// value. The defaults are read concern "snapshot", write concern "majority"
// and read preference "primary":
//
//	tx.WithTransactionOptions(options.Transaction().SetReadConcern(readconcern.Majority()))
func WithTransactionOptions(opts options.Lister[options.TransactionOptions]) Option {
	return optionFunc(func(c *config) {
		if opts == nil {
			return
		}
		var to options.TransactionOptions
		for _, set := range opts.List() {
			if err := set(&to); err != nil {
				c.err = fmt.Errorf("transaction options: %w", err)
				return
			}
		}
		if to.ReadConcern != nil {
			c.readConcern = to.ReadConcern
			c.set |= setReadConcern
		}
		if to.WriteConcern != nil {
			c.writeConcern = to.WriteConcern
			c.set |= setWriteConcern
		}
		if to.ReadPreference != nil {
			c.readPref = to.ReadPreference
			c.set |= setReadPref
		}
	})
}

// WithStrictJoin makes a scope that joins an existing transaction fail
// with [ErrOptionConflict] when it was given owner-only options that differ
// from the transaction's: [WithMaxAttempts], [WithBackoff] and
// [WithTransactionOptions]. Without it (the default, as Spring does for a
// participating transaction), a joining scope ignores those options: the
// transaction keeps its owner's. Give it to a call, or to [NewRunner] for
// every call.
func WithStrictJoin() Option {
	return optionFunc(func(c *config) { c.strictJoin = true })
}

// WithNoRollbackFor sets errors that do not roll the transaction back, as
// Spring's noRollbackFor: when the callback returns an error that matches
// one of targets (errors.Is), the scope commits as if it had returned nil,
// and then returns the error. A joined scope's exempted error does not mark
// the transaction rollback-only. Options add up.
func WithNoRollbackFor(targets ...error) Option {
	targets = append([]error(nil), targets...)
	return WithNoRollbackIf(func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	})
}

// WithNoRollbackIf is [WithNoRollbackFor] with a predicate, for errors that
// are matched by type (errors.As): an error for which commit returns true
// does not roll the transaction back.
func WithNoRollbackIf(commit func(error) bool) Option {
	return optionFunc(func(c *config) {
		if commit != nil {
			c.noRollbackIf = append(c.noRollbackIf[:len(c.noRollbackIf):len(c.noRollbackIf)], commit)
		}
	})
}

// AddObserver adds o to the observers the scope reports to, keeping those
// already set (such as the [ZapObserver] of [Module]); [WithObserver]
// replaces them.
func AddObserver(o Observer) Option {
	return optionFunc(func(c *config) {
		if o == nil {
			return
		}
		c.observer = Observers(c.observer, o)
	})
}

// WithObserver sets who is told about the scope's events. The default
// discards them; [Module] defaults to a [ZapObserver] when a logger is
// available. A nil observer discards events.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) {
		if o == nil {
			o = nopObserver{}
		}
		c.observer = o
	})
}

// transactionOptions builds the driver's options from c.
func (c *config) transactionOptions() *options.TransactionOptionsBuilder {
	return options.Transaction().
		SetReadConcern(c.readConcern).
		SetWriteConcern(c.writeConcern).
		SetReadPreference(c.readPref)
}
