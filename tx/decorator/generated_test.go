package decorator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/decorator/internal/example"
)

// The tests below run the decorator that cmd/txdecorate generated for
// example.Ledger (example/ledger_tx.go) against the server.

// newLedger returns the MongoDB ledger, decorated, with accounts alice
// (100) and bob (0).
func newLedger(t *testing.T, e *env) (example.Ledger, *example.Store) {
	t.Helper()
	store := example.NewStore(e.db)
	ledger := example.Transactional(store, e.runner)
	ctx := ctxTimeout(t)
	require.NoError(t, ledger.Open(ctx, "alice", 100))
	require.NoError(t, ledger.Open(ctx, "bob", 0))
	e.rec.Reset()
	return ledger, store
}

// balances returns alice's and bob's balances, read outside any
// transaction.
func balances(t *testing.T, store *example.Store) [2]int64 {
	t.Helper()
	var out [2]int64
	for i, acc := range []string{"alice", "bob"} {
		b, err := store.Balance(context.Background(), acc)
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

func TestGeneratedDecoratorCommits(t *testing.T) {
	e := newEnv(t)
	ledger, store := newLedger(t, e)

	id, err := ledger.Transfer(ctxTimeout(t), "alice", "bob", 30)

	require.NoError(t, err)
	assert.NotEmpty(t, id)
	assert.Equal(t, [2]int64{70, 30}, balances(t, store))
	assert.EqualValues(t, 1, count(t, e.db.Collection("entries")))
	assert.Equal(t, []string{"begin example.Ledger.Transfer", "commit example.Ledger.Transfer"}, names(e.rec))
}

func TestGeneratedDecoratorRollsBack(t *testing.T) {
	e := newEnv(t)
	ledger, store := newLedger(t, e)

	// The debit succeeds; the credit finds no account and fails.
	_, err := ledger.Transfer(ctxTimeout(t), "alice", "carol", 30)

	require.ErrorIs(t, err, example.ErrNoAccount)
	assert.Equal(t, [2]int64{100, 0}, balances(t, store), "the debit was rolled back")
	assert.Zero(t, count(t, e.db.Collection("entries")))
	assert.Equal(t, []string{"begin example.Ledger.Transfer", "abort example.Ledger.Transfer"}, names(e.rec))
}

func TestGeneratedDecoratorJoinsTheCallersTransaction(t *testing.T) {
	e := newEnv(t)
	ledger, store := newLedger(t, e)
	ctx := ctxTimeout(t)

	err := e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := ledger.Transfer(ctx, "alice", "bob", 30); err != nil {
			return err
		}
		// Both transfers are one transaction: the second fails, so the
		// first is undone too.
		_, err := ledger.Transfer(ctx, "alice", "bob", 80)
		return err
	}, tx.WithName("pay"))

	require.ErrorIs(t, err, example.ErrInsufficientCredits)
	assert.Equal(t, [2]int64{100, 0}, balances(t, store))
	assert.Equal(t, []string{
		"begin pay",
		"begin example.Ledger.Transfer", "end example.Ledger.Transfer",
		"begin example.Ledger.Transfer", "rollback-only example.Ledger.Transfer",
		"abort pay",
	}, names(e.rec))
}

func TestGeneratedDecoratorRetries(t *testing.T) {
	e := newEnv(t)
	ledger, store := newLedger(t, e)
	testenv.FailTransient(t, e.client, "insert", 1) // the ledger entry, after both updates

	_, err := ledger.Transfer(ctxTimeout(t), "alice", "bob", 30)

	require.NoError(t, err)
	assert.Equal(t, [2]int64{70, 30}, balances(t, store), "the first attempt's updates were rolled back, the second's committed")
	assert.EqualValues(t, 1, count(t, e.db.Collection("entries")))
	assert.Equal(t, []string{
		"begin example.Ledger.Transfer", "retry example.Ledger.Transfer",
		"begin example.Ledger.Transfer", "commit example.Ledger.Transfer",
	}, names(e.rec))
}

func TestGeneratedDecoratorHonoursDirectives(t *testing.T) {
	t.Run("propagation=requires_new and name commit the audit apart", func(t *testing.T) {
		e := newEnv(t)
		ledger, store := newLedger(t, e)
		ctx := ctxTimeout(t)

		err := e.runner.Run(ctx, func(ctx context.Context) error {
			if err := ledger.Audit(ctx, "transfer attempted"); err != nil {
				return err
			}
			_, err := ledger.Transfer(ctx, "alice", "bob", 500)
			return err
		}, tx.WithName("pay"))

		require.ErrorIs(t, err, example.ErrInsufficientCredits)
		assert.EqualValues(t, 1, count(t, e.db.Collection("audit")), "the audit line survived the rollback")
		assert.Equal(t, [2]int64{100, 0}, balances(t, store))
		assert.Contains(t, names(e.rec), "commit ledger.audit")
	})

	t.Run("none runs without a transaction", func(t *testing.T) {
		e := newEnv(t)
		spy := &spyLedger{}
		ledger := example.Transactional(spy, e.runner)

		_, err := ledger.Balance(ctxTimeout(t), "alice")

		require.NoError(t, err)
		assert.Equal(t, []bool{false}, spy.inTx)
		assert.Empty(t, names(e.rec), "no scope at all")
	})

	t.Run("timeout on the interface applies to every method", func(t *testing.T) {
		e := newEnv(t)
		spy := &spyLedger{}
		ledger := example.Transactional(spy, e.runner)

		require.NoError(t, ledger.Open(context.Background(), "alice", 1))

		assert.Equal(t, []bool{true}, spy.inTx)
		assert.WithinDuration(t, time.Now().Add(10*time.Second), spy.deadline, 5*time.Second)
	})

	t.Run("a method without ctx passes through", func(t *testing.T) {
		e := newEnv(t)
		assert.Equal(t, "spy", example.Transactional(&spyLedger{}, e.runner).Name())
		assert.Empty(t, names(e.rec))
	})
}

func TestGeneratedDecoratorWithFx(t *testing.T) {
	e := newEnv(t)
	var ledger example.Ledger
	app := fxtest.New(t,
		fx.Supply(e.runner, e.db),
		fx.Provide(func(db *mongo.Database) example.Ledger { return example.NewStore(db) }),
		fx.Decorate(example.Transactional),
		fx.Populate(&ledger),
	)
	app.RequireStart()
	defer app.RequireStop()

	require.NoError(t, ledger.Open(ctxTimeout(t), "alice", 5))

	assert.Equal(t, []string{"begin example.Ledger.Open", "commit example.Ledger.Open"}, names(e.rec),
		"the consumer got the transactional Ledger")
}

// spyLedger records the ctx its methods are called with.
type spyLedger struct {
	mu       sync.Mutex
	inTx     []bool
	deadline time.Time
}

func (s *spyLedger) record(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inTx = append(s.inTx, tx.InTransaction(ctx))
	s.deadline, _ = ctx.Deadline()
}

func (s *spyLedger) Open(ctx context.Context, _ string, _ int64) error { s.record(ctx); return nil }
func (s *spyLedger) Transfer(ctx context.Context, _, _ string, _ int64) (string, error) {
	s.record(ctx)
	return "", nil
}
func (s *spyLedger) Balance(ctx context.Context, _ string) (int64, error) {
	s.record(ctx)
	return 0, nil
}
func (s *spyLedger) Audit(ctx context.Context, _ string) error { s.record(ctx); return nil }
func (s *spyLedger) Name() string                              { return "spy" }

// newOrders returns the decorated Orders, paying through the decorated
// ledger of newLedger.
func newOrders(t *testing.T, e *env) (example.Orders, *example.Store) {
	t.Helper()
	ledger, store := newLedger(t, e)
	return example.TransactionalOrders(example.NewOrderStore(e.db, ledger), e.runner), store
}

func TestDecoratedServicesCallingEachOtherShareOneTransaction(t *testing.T) {
	// Orders (max_attempts=3) calls Ledger (max_attempts=5, timeout=10s):
	// the Ledger's scope joins the Orders' transaction, whose owner's
	// settings rule.
	t.Run("both writes commit together", func(t *testing.T) {
		e := newEnv(t)
		orders, store := newOrders(t, e)

		require.NoError(t, orders.Place(ctxTimeout(t), "o1", "alice", "bob", 30))

		assert.Equal(t, [2]int64{70, 30}, balances(t, store))
		assert.EqualValues(t, 1, count(t, e.db.Collection("orders")))
		assert.EqualValues(t, 1, count(t, e.db.Collection("entries")))
		assert.Equal(t, []string{
			"begin example.Orders.Place",
			"begin example.Ledger.Transfer", "end example.Ledger.Transfer",
			"commit example.Orders.Place",
		}, names(e.rec))
	})

	t.Run("a failed payment undoes the order", func(t *testing.T) {
		e := newEnv(t)
		orders, store := newOrders(t, e)

		err := orders.Place(ctxTimeout(t), "o1", "alice", "carol", 30)

		require.ErrorIs(t, err, example.ErrNoAccount)
		assert.Equal(t, [2]int64{100, 0}, balances(t, store), "the debit was rolled back")
		assert.Zero(t, count(t, e.db.Collection("orders")), "the order was rolled back")
		assert.Zero(t, count(t, e.db.Collection("entries")))
	})

	t.Run("the owner retries the whole of it", func(t *testing.T) {
		e := newEnv(t)
		orders, store := newOrders(t, e)
		testenv.FailTransient(t, e.client, "insert", 2) // the order, then the ledger entry

		require.NoError(t, orders.Place(ctxTimeout(t), "o1", "alice", "bob", 30))

		assert.Equal(t, [2]int64{70, 30}, balances(t, store))
		assert.EqualValues(t, 1, count(t, e.db.Collection("orders")))
		assert.EqualValues(t, 1, count(t, e.db.Collection("entries")))
		assert.Len(t, e.rec.Of(tx.EventRetry), 2, "Orders, the owner, retried; the Ledger did not")
	})

	t.Run("the owner's attempt limit rules", func(t *testing.T) {
		e := newEnv(t)
		orders, store := newOrders(t, e)
		testenv.FailTransient(t, e.client, "insert", 3) // the order, three times

		err := orders.Place(ctxTimeout(t), "o1", "alice", "bob", 30)

		var re *tx.RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.Attempts, "Orders' max_attempts=3, not the Ledger's 5")
		assert.Equal(t, [2]int64{100, 0}, balances(t, store))
		assert.Zero(t, count(t, e.db.Collection("orders")))
	})

	t.Run("strict validation refuses the Ledger's own attempt limit", func(t *testing.T) {
		e := newEnv(t)
		strict := tx.NewRunner(e.client, tx.WithObserver(e.rec), tx.WithStrictJoin())
		store := example.NewStore(e.db)
		require.NoError(t, store.Open(ctxTimeout(t), "alice", 100))
		require.NoError(t, store.Open(ctxTimeout(t), "bob", 0))
		orders := example.TransactionalOrders(example.NewOrderStore(e.db, example.Transactional(store, strict)), strict)

		err := orders.Place(ctxTimeout(t), "o1", "alice", "bob", 30)

		require.ErrorIs(t, err, tx.ErrOptionConflict)
		assert.Equal(t, [2]int64{100, 0}, balances(t, store))
		assert.Zero(t, count(t, e.db.Collection("orders")))
	})
}

// rollingBackLedger is a Ledger whose Open writes, then asks for a
// rollback and reports no error.
type rollingBackLedger struct{ *example.Store }

func (l rollingBackLedger) Open(ctx context.Context, account string, balance int64) error {
	if err := l.Store.Open(ctx, account, balance); err != nil {
		return err
	}
	tx.SetRollbackOnly(ctx)
	return nil
}

func TestGeneratedDecoratorReportsARollbackTheImplementationAskedFor(t *testing.T) {
	e := newEnv(t)
	store := example.NewStore(e.db)
	ledger := example.Transactional(rollingBackLedger{store}, e.runner)

	err := ledger.Open(ctxTimeout(t), "alice", 100)

	require.ErrorIs(t, err, tx.ErrUnexpectedRollback, "nothing was committed: nil would say it was")
	assert.Zero(t, count(t, e.db.Collection("accounts")))
}
