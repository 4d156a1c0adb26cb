package tx

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// An Observer is told about every scope's life: [Module] logs it with a
// [ZapObserver]; metrics and tracing plug in the same way. Observe runs
// synchronously on the scope's goroutine, so it must be quick and must not
// panic; it may be called from several goroutines at once.
type Observer interface {
	Observe(Event)
}

// EventKind says what happened to a scope.
type EventKind uint8

// The kinds of [Event].
const (
	// EventBegin: a scope started (an attempt, for the outermost scope).
	EventBegin EventKind = iota + 1
	// EventRetry: an attempt failed with a retryable error and the scope
	// will try again after Event.Backoff: the whole callback, or only the
	// commit when Event.CommitOnly is set.
	EventRetry
	// EventCommit: the outermost scope committed. Its after-commit hooks
	// run next.
	EventCommit
	// EventAbort: the outermost scope aborted; Event.Err says why.
	EventAbort
	// EventRollbackOnly: a joined scope failed and marked the transaction
	// rollback-only; Event.Err is its error.
	EventRollbackOnly
	// EventEnd: a scope that neither commits nor aborts (a joined scope, or
	// one that ran without a transaction) returned; Event.Err is its error.
	EventEnd
	// EventHookPanic: an after-commit or after-completion hook panicked.
	// The transaction's outcome stands; Event.Err is a *[PanicError].
	EventHookPanic
	// EventCommitUnknown: the outermost scope sent a commit but could not
	// learn its outcome; Event.Err matches [ErrCommitUnknown].
	EventCommitUnknown
)

var eventKindNames = [...]string{
	EventBegin:         "begin",
	EventRetry:         "retry",
	EventCommit:        "commit",
	EventAbort:         "abort",
	EventRollbackOnly:  "rollback-only",
	EventEnd:           "end",
	EventHookPanic:     "hook-panic",
	EventCommitUnknown: "commit-unknown",
}

// String returns the kind's name, e.g. "commit".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event describes one step of a scope's life.
type Event struct {
	Kind EventKind
	// Name is the scope's name (see [WithName]).
	Name        string
	Propagation Propagation
	// Joined is set for a scope that joined an enclosing transaction.
	Joined bool
	// Transactional is false for a scope that runs without a transaction.
	Transactional bool
	// Attempt counts the outermost scope's attempts from 1; a joined scope
	// reports the attempt of the transaction it joined.
	Attempt int
	// Duration is the time since the scope began (zero for EventBegin).
	Duration time.Duration
	// Err is the cause of a retry, abort or rollback-only mark, or the
	// error a scope ended with.
	Err error
	// Labels are the MongoDB error labels found on Err.
	Labels []string
	// Backoff is how long an EventRetry waits before the next attempt.
	Backoff time.Duration
	// CommitOnly is set on an EventRetry that retries only the commit
	// (UnknownTransactionCommitResult).
	CommitOnly bool
	// Context is the ctx the scope was called with (for the outermost
	// scope, the caller's): an observer finds the caller's trace span or
	// request values in it. Events of one outermost scope, all attempts
	// included, carry the same Context. Observers must not keep it, nor
	// do I/O with it.
	Context context.Context
	// Infrastructure is set when Err is a failure of MongoDB or of txkit
	// (network, server, commit, retries exhausted, a panic) rather than an
	// error the callback returned on its own, such as a business rule.
	// Cancellations and duplicate-key errors (an idempotency key seen
	// twice) are not infrastructure failures.
	Infrastructure bool
}

type nopObserver struct{}

func (nopObserver) Observe(Event) {}

// Observers returns an Observer that tells each of os, in order, about
// every event. Nil observers are skipped.
func Observers(os ...Observer) Observer {
	var all multiObserver
	for _, o := range os {
		switch o := o.(type) {
		case nil, nopObserver:
		case multiObserver:
			all = append(all, o...)
		default:
			all = append(all, o)
		}
	}
	switch len(all) {
	case 0:
		return nopObserver{}
	case 1:
		return all[0]
	}
	return all
}

type multiObserver []Observer

func (m multiObserver) Observe(e Event) {
	for _, o := range m {
		o.Observe(e)
	}
}

// knownLabels are the error labels worth reporting; mongo.LabeledError can
// only be asked about one label at a time.
var knownLabels = [...]string{
	"TransientTransactionError",
	"UnknownTransactionCommitResult",
	"RetryableWriteError",
	"NetworkError",
	"SystemOverloadedError",
	"RetryableError",
	"NoWritesPerformed",
}

// errorLabels returns the known MongoDB error labels anywhere in err's tree.
func errorLabels(err error) []string {
	if err == nil {
		return nil
	}
	var labels []string
	for _, l := range knownLabels {
		if hasLabel(err, l) {
			labels = append(labels, l)
		}
	}
	return labels
}

// isInfrastructure reports whether a callback's error came from MongoDB,
// the network or a deadline rather than from the callback's own logic.
func isInfrastructure(err error) bool {
	if isContextError(err) {
		return false // the caller gave up; nothing is broken
	}
	var re *RetryError
	if errors.As(err, &re) {
		return true // retries ran out
	}
	if IsRetryable(err) {
		return false // expected under concurrency; the outermost scope retries
	}
	var se mongo.ServerError
	switch {
	case errors.As(err, &se):
		return !mongo.IsDuplicateKeyError(err)
	case errors.Is(err, mongo.ErrClientDisconnected), mongo.IsNetworkError(err):
		return true
	case errors.Is(err, errPanicked):
		return true
	}
	return false
}

// isContextError reports whether err is a cancellation or deadline.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
