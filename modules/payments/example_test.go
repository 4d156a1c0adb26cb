package payments_test

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
)

// A payment completes once, however often its webhook arrives; a refund
// takes the credits back, unless they were spent.
func Example() {
	srv, err := mongotest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		panic(err)
	}
	defer client.Disconnect(context.Background())
	ctx := context.Background()
	db := client.Database("example")
	runner := tx.NewRunner(client)
	cs := credits.NewService(db, runner)
	ps := payments.NewService(db, runner, cs)
	if err := errors.Join(cs.EnsureSchema(ctx), ps.EnsureSchema(ctx)); err != nil {
		panic(err)
	}

	p, _ := ps.Create(ctx, payments.NewPayment{
		Account: "user-42", AmountMinor: 999, Currency: "EUR", Credits: 100,
		Provider: "stripe", ProviderRef: "pi_123",
	})
	fmt.Println(p.Status)
	for range 3 { // the provider delivers its webhook three times
		p, _ = ps.CompleteByRef(ctx, "stripe", "pi_123")
	}
	b, _ := cs.Balance(ctx, "user-42")
	fmt.Println(p.Status, b.Balance)

	_, _ = cs.Deduct(ctx, "user-42", 30) // spent
	_, err = ps.Refund(ctx, p.ID)
	fmt.Println(errors.Is(err, credits.ErrInsufficientCredits))
	// Output:
	// pending
	// completed 100
	// true
}
