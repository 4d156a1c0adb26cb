package payments_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/payments"
)

// With faults injected where they hurt most, a payment still completes
// exactly once: credited once, one entry, ledger reconciled (by newEnv's
// cleanup).
func TestCompleteSurvivesFaults(t *testing.T) {
	tests := []struct {
		name string
		give bson.D // failCommand data
		// driverRetries is how many failures the driver absorbs by itself
		// (it resends a commit once after a network error).
		driverRetries int
	}{
		{name: "a transient error on the entry insert", give: bson.D{
			{Key: "failCommands", Value: bson.A{"insert"}},
			{Key: "errorCode", Value: 112}, // WriteConflict
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
		{name: "an unknown commit result", give: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 91}, // ShutdownInProgress
			{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}},
		}},
		{name: "a closed connection on commit", give: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "closeConnection", Value: true},
		}, driverRetries: 1},
	}
	for _, tt := range tests {
		for _, times := range []int{1, 2} {
			t.Run(tt.name+" "+map[int]string{1: "once", 2: "twice"}[times], func(t *testing.T) {
				e := newEnv(t)
				p := e.create(t, 100)
				testenv.FailCommand(t, e.db.Client(), bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
					{Key: "data", Value: tt.give},
				})
				got, err := e.payments.Complete(context.Background(), p.ID)
				require.NoError(t, err)
				assert.Equal(t, payments.StatusCompleted, got.Status)

				again, err := e.payments.Complete(context.Background(), p.ID)
				require.NoError(t, err)
				assert.Equal(t, got.CreditEntryID, again.CreditEntryID)
				assert.Equal(t, int64(100), e.balance(t))
				assert.Equal(t, int64(1), e.entries(t, p.ID))
				assert.Equal(t, int32(times-tt.driverRetries), e.retries.n.Load(), "every fault was hit and retried")
			})
		}
	}
}

func TestRefundSurvivesFaults(t *testing.T) {
	e := newEnv(t)
	p := e.create(t, 100)
	_, err := e.payments.Complete(context.Background(), p.ID)
	require.NoError(t, err)
	testenv.FailCommand(t, e.db.Client(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 91},
			{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}},
		}},
	})
	got, err := e.payments.Refund(context.Background(), p.ID)
	require.NoError(t, err)
	assert.Equal(t, payments.StatusRefunded, got.Status)
	assert.Equal(t, int64(0), e.balance(t))
	assert.Equal(t, int64(2), e.entries(t, p.ID))
	assert.Equal(t, int32(1), e.retries.n.Load(), "the fault was hit and retried")
}

// A payment whose commit met a write concern error, or lost its
// connection, was created: Create says so (finding
// payments-create-wce-reported-failed; Create now writes in a
// transaction, so the error lands on its commit), and exactly one payment
// and one guard exist.
func TestCreateWithAWriteConcernErrorReportsTheCreatedPayment(t *testing.T) {
	tests := []struct {
		name string
		give bson.D // failCommand data
	}{
		{name: "a write concern error", give: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "writeConcernError", Value: bson.D{{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"}}},
		}},
		{name: "a closed connection", give: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "closeConnection", Value: true},
		}},
	}
	for _, tt := range tests {
		for _, times := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s %d times", tt.name, times), func(t *testing.T) {
				e := newEnv(t)
				testenv.FailCommand(t, e.db.Client(), bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
					{Key: "data", Value: tt.give},
				})
				p := e.create(t, 100)
				got, err := e.payments.GetPayment(context.Background(), p.ID)
				require.NoError(t, err)
				assert.Equal(t, p, got)
				ctx := context.Background()
				n, err := e.db.Collection("payments").CountDocuments(ctx, bson.D{{Key: "providerRef", Value: p.ProviderRef}})
				require.NoError(t, err)
				assert.Equal(t, int64(1), n)
				n, err = e.db.Collection("payments_refs").CountDocuments(ctx, bson.D{{Key: "payment", Value: p.ID}})
				require.NoError(t, err)
				assert.Equal(t, int64(1), n)
			})
		}
	}
}
