package payments_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

// The database replaced under a running service (dropped, or a fresh
// server at the same address) takes every secondary index with it. A
// provider reference must still be used once: the duplicate is refused by
// the write itself, not by an index created at start.
func TestCreateRefusesADuplicateAfterSchemaLoss(t *testing.T) {
	tests := []struct {
		name string
		lose func(ctx context.Context, e *env) error
	}{
		{name: "indexes dropped", lose: func(ctx context.Context, e *env) error {
			return e.db.Collection("payments").Indexes().DropAll(ctx)
		}},
		{name: "collection dropped", lose: func(ctx context.Context, e *env) error {
			return e.db.Collection("payments").Drop(ctx)
		}},
		{name: "database dropped", lose: func(ctx context.Context, e *env) error {
			return e.db.Drop(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			require.NoError(t, tt.lose(ctx, e))
			give := payments.NewPayment{Account: "user-1", AmountMinor: 500, Currency: "EUR", Credits: 50, Provider: "stripe", ProviderRef: "pi_lost"}

			first, err := e.payments.Create(ctx, give)
			require.NoError(t, err)
			_, err = e.payments.Create(ctx, give)
			require.ErrorIs(t, err, payments.ErrDuplicateProviderRef)

			n, err := e.db.Collection("payments").CountDocuments(ctx, bson.D{{Key: "provider", Value: "stripe"}, {Key: "providerRef", Value: "pi_lost"}})
			require.NoError(t, err)
			assert.Equal(t, int64(1), n, "one payment per provider reference")
			got, err := e.payments.CompleteByRef(ctx, "stripe", "pi_lost")
			require.NoError(t, err)
			assert.Equal(t, first.ID, got.ID)
		})
	}
}

// Concurrent creates with one reference on a database without indexes:
// exactly one payment.
func TestConcurrentCreatesAfterSchemaLossCreateOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.db.Drop(ctx))
	give := payments.NewPayment{Account: "user-1", AmountMinor: 500, Currency: "EUR", Credits: 50, Provider: "stripe", ProviderRef: "pi_race"}
	const workers = 16
	errs := make(chan error, workers)
	for range workers {
		go func() {
			_, err := e.payments.Create(ctx, give)
			errs <- err
		}()
	}
	created := 0
	for range workers {
		err := <-errs
		if err == nil {
			created++
			continue
		}
		require.ErrorIs(t, err, payments.ErrDuplicateProviderRef)
	}
	assert.Equal(t, 1, created)
	n, err := e.db.Collection("payments").CountDocuments(ctx, bson.D{{Key: "providerRef", Value: "pi_race"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// A start that finds two payments with one provider reference (written
// while the unique index was missing) fails with a message that names the
// collection, the duplicated reference and what to do, not a bare E11000.
func TestEnsureSchemaNamesDuplicatePayments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	coll := e.db.Collection("payments")
	require.NoError(t, coll.Indexes().DropAll(ctx))
	for _, id := range []string{"aaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaa2"} {
		_, err := coll.InsertOne(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "account", Value: "user-1"}, {Key: "amountMinor", Value: int64(1)},
			{Key: "currency", Value: "EUR"}, {Key: "credits", Value: int64(1)}, {Key: "provider", Value: "stripe"},
			{Key: "providerRef", Value: "pi_twice"}, {Key: "status", Value: "pending"},
		})
		require.NoError(t, err)
	}

	err := e.payments.EnsureSchema(ctx)
	require.ErrorIs(t, err, payments.ErrDuplicatePayments)
	msg := err.Error()
	for _, want := range []string{`"payments"`, "stripe/pi_twice", "aaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaa2", "docs/payments.md"} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "E11000")
}

// Payments stored before reference guards existed get theirs at start:
// their reference stays taken even when the database later loses its
// indexes.
func TestPaymentsStoredBeforeGuardsKeepTheirReference(t *testing.T) {
	db := testenv.DB(t)
	ctx := context.Background()
	_, err := db.Collection("payments").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "aaaaaaaaaaaaaaaaaaaaaaa9"}, {Key: "account", Value: "user-1"}, {Key: "amountMinor", Value: int64(500)},
		{Key: "currency", Value: "EUR"}, {Key: "credits", Value: int64(50)}, {Key: "provider", Value: "stripe"},
		{Key: "providerRef", Value: "pi_old"}, {Key: "status", Value: "pending"},
	})
	require.NoError(t, err)
	_, err = db.Collection("payments").InsertOne(ctx, bson.D{
		{Key: "_id", Value: "aaaaaaaaaaaaaaaaaaaaaaa8"}, {Key: "account", Value: "user-1"}, {Key: "amountMinor", Value: int64(500)},
		{Key: "currency", Value: "EUR"}, {Key: "credits", Value: int64(50)}, {Key: "provider", Value: "stripe"},
		{Key: "providerRef", Value: "pi_older"}, {Key: "status", Value: "pending"},
	})
	require.NoError(t, err)
	// A start that stopped half-way guarded one of them already.
	_, err = db.Collection("payments_refs").InsertOne(ctx, bson.D{{Key: "_id", Value: "stripe/pi_older"}, {Key: "payment", Value: "aaaaaaaaaaaaaaaaaaaaaaa8"}})
	require.NoError(t, err)
	r := tx.NewRunner(db.Client())
	c := credits.NewService(db, r)
	p := payments.NewService(db, r, c)
	require.NoError(t, c.EnsureSchema(ctx))
	require.NoError(t, p.EnsureSchema(ctx))
	require.NoError(t, p.EnsureSchema(ctx), "a second start")
	require.NoError(t, db.Collection("payments").Indexes().DropAll(ctx))

	_, err = p.Create(ctx, payments.NewPayment{Account: "user-1", AmountMinor: 500, Currency: "EUR", Credits: 50, Provider: "stripe", ProviderRef: "pi_old"})
	require.ErrorIs(t, err, payments.ErrDuplicateProviderRef)
	got, err := p.CompleteByRef(ctx, "stripe", "pi_old")
	require.NoError(t, err)
	assert.Equal(t, "aaaaaaaaaaaaaaaaaaaaaaa9", got.ID)
	_, err = p.Create(ctx, payments.NewPayment{Account: "user-1", AmountMinor: 500, Currency: "EUR", Credits: 50, Provider: "stripe", ProviderRef: "pi_older"})
	require.ErrorIs(t, err, payments.ErrDuplicateProviderRef)
	n, err := db.Collection("payments").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}
