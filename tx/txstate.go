package tx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// txState is one transaction: its session and everything the scopes that
// take part in it share. Its owner scope is embedded, so starting a
// transaction allocates one object for both.
type txState struct {
	owner  scope // the outermost scope; its frame in ctx
	client *mongo.Client
	sess   *mongo.Session

	// foreign marks a transaction that the caller started with the driver:
	// txkit joins it but never commits, aborts or ends it.
	foreign bool
	// borrowed marks a session that came idle in the caller's ctx: txkit
	// runs its transaction on it but does not end it.
	borrowed bool

	// ended is set once the transaction committed or aborted for good, so a
	// ctx that outlives its scope no longer looks transactional.
	ended atomic.Bool

	txnOpts *options.TransactionOptionsBuilder
	budget  time.Duration
	attempt int  // 1-based; written by the owner between attempts only
	active  bool // a transaction is started and not yet committed/aborted

	// leftOpen is set when the session's transaction may still be open on
	// the server (an abort that could not be confirmed, a commit whose
	// outcome is unknown or that was refused before it ran): the session
	// then goes to reaper, not the pool, and is killed before a next
	// attempt (see scope.endLeftOpen).
	leftOpen bool
	// spare marks a session the reaper killed and kept (see reaper.take).
	// Most are dirty (a network error marked them), and the driver
	// discards a dirty session when it ends: a transaction its abort may
	// have left open (the server refused the abort at once, which the
	// driver does not report) would not be superseded by the pool's next
	// transaction, as on a clean session, and would hold its documents
	// until the lifetime limit. So an abort on it leaves the session to
	// the reaper (see abort).
	spare  bool
	reaper *reaper
	// orphans is the registry that recorded the session for this
	// transaction, until the transaction ends (see registry.release).
	orphans   *registry
	cleanupBy time.Time // the current clean-up's deadline; zero before it

	mu      sync.Mutex
	rbOnly  bool  // the transaction can only abort
	rbInner bool  // …because of a joined scope, not the owner itself
	rbCause error // the first joined scope's error, if one failed
	hooks   hooks
	// foreignHook is set when a hook was registered in a foreign
	// transaction, which cannot run it.
	foreignHook bool
}

func (st *txState) markForeignHook() {
	st.mu.Lock()
	st.foreignHook = true
	st.mu.Unlock()
}

// hooks are the synchronisations registered during one attempt.
type hooks struct {
	beforeCommit    []func(context.Context) error
	afterCommit     []func(context.Context)
	afterCompletion []func(context.Context, Outcome)
}

func (h *hooks) empty() bool {
	return len(h.beforeCommit) == 0 && len(h.afterCommit) == 0 && len(h.afterCompletion) == 0
}

func (st *txState) name() string {
	if st.foreign {
		return "(started with the driver)"
	}
	return st.owner.name()
}

// live reports whether the transaction still runs.
func (st *txState) live() bool {
	if st.foreign {
		return st.sess.TransactionRunning()
	}
	return !st.ended.Load()
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
	st.hooks = hooks{}
	st.mu.Unlock()
}

// takeHooks returns the registered hooks and forgets them.
func (st *txState) takeHooks() hooks {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.hooks
	st.hooks = hooks{}
	return h
}

// takeBeforeCommit returns the before-commit hooks registered so far and
// forgets them (a hook may register more).
func (st *txState) takeBeforeCommit() []func(context.Context) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.hooks.beforeCommit
	st.hooks.beforeCommit = nil
	return h
}

func (st *txState) hasHooks() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.hooks.empty()
}
