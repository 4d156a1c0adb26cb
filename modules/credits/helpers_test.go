package credits_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// clock is a settable clock for hold expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// newClock starts at the real time: idempotency records expire by the
// service's clock, and a server's TTL monitor deletes them by its own, so a
// clock in the past would lose keys mid-test (finding
// credits-tests-clock-behind-ttl).
func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's ledger on a fresh database.
type env struct {
	db     *mongo.Database
	runner *tx.Runner
	svc    *credits.Service
	clock  *clock
	prefix string
}

func newEnv(t testing.TB, opts ...credits.Option) *env {
	t.Helper()
	return newEnvOn(t, testenv.DB(t), "credit_", opts...)
}

// newEnvOn returns an env on db whose collections start with prefix.
func newEnvOn(t testing.TB, db *mongo.Database, prefix string, opts ...credits.Option) *env {
	t.Helper()
	c := newClock()
	runner := tx.NewRunner(db.Client())
	opts = append([]credits.Option{credits.WithClock(c.Now), credits.WithCollectionPrefix(prefix)}, opts...)
	svc := credits.NewService(db, runner, opts...)
	require.NoError(t, svc.EnsureSchema(context.Background()))
	e := &env{db: db, runner: runner, svc: svc, clock: c, prefix: prefix}
	t.Cleanup(func() { e.requireConsistent(t) })
	return e
}

// requireConsistent asserts that Reconcile finds no mismatch, before and
// after every embedded entry is copied out.
func (e *env) requireConsistent(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	r, err := e.svc.Reconcile(ctx)
	require.NoError(t, err)
	require.Empty(t, r.Mismatches, "reconcile before flush")
	require.NoError(t, e.svc.Flush(ctx))
	r2, err := e.svc.Reconcile(ctx)
	require.NoError(t, err)
	require.Empty(t, r2.Mismatches, "reconcile after flush")
	require.Equal(t, r.Entries, r2.Entries, "flushing changed the number of entries")
	n, err := e.db.Collection(e.prefix+"entries").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Equal(t, r2.Entries, n, "entries collection after flush")
}

func (e *env) balance(t testing.TB, account string) credits.Balance {
	t.Helper()
	b, err := e.svc.Balance(context.Background(), account)
	require.NoError(t, err)
	return b
}

// ledgerSum is the sum of account's entries as History returns them.
func (e *env) ledgerSum(t testing.TB, account string) (sum int64, n int) {
	t.Helper()
	q := credits.HistoryQuery{Limit: 1000}
	for {
		es, next, err := e.svc.History(context.Background(), account, q)
		require.NoError(t, err)
		for _, en := range es {
			sum += en.Amount
			n++
		}
		if next == "" {
			return sum, n
		}
		q.Cursor = next
	}
}

// stored reads an account document as stored.
func (e *env) stored(t testing.TB, account string) bson.M {
	t.Helper()
	var m bson.M
	require.NoError(t, e.db.Collection(e.prefix+"accounts").FindOne(context.Background(), bson.D{{Key: "_id", Value: account}}).Decode(&m))
	return m
}
