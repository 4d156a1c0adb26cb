package payments_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/modules/payments"
)

// BenchmarkCreate measures Create (the payment and its reference's guard
// in one transaction) against its baseline, one plain insert of the same
// payment (what Create did before guards).
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	b.Run("baseline=insert", func(b *testing.B) {
		for b.Loop() {
			now := time.Now()
			_, err := e.db.Collection("payments").InsertOne(ctx, payments.Payment{
				ID: bson.NewObjectID().Hex(), Account: "user-1", AmountMinor: 1, Currency: "EUR", Credits: 1,
				Provider: "bench", ProviderRef: "plain-" + bson.NewObjectID().Hex(), Status: payments.StatusPending, CreatedAt: now, UpdatedAt: now,
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			_, err := e.payments.Create(ctx, payments.NewPayment{Account: "user-1", AmountMinor: 1, Currency: "EUR", Credits: 1,
				Provider: "bench", ProviderRef: "guarded-" + bson.NewObjectID().Hex()})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
