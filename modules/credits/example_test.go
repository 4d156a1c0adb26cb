package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
)

// exampleDB starts an in-process server and returns a database on it, and
// a function that shuts both down.
func exampleDB() (*mongo.Database, func()) {
	srv, err := mongotest.NewServer()
	if err != nil {
		panic(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		panic(err)
	}
	return client.Database("example"), func() {
		_ = client.Disconnect(context.Background())
		_ = srv.Close()
	}
}

// Credits are added and deducted; a deduction never overdraws.
func Example() {
	db, stop := exampleDB()
	defer stop()
	ctx := context.Background()
	svc := credits.NewService(db, tx.NewRunner(db.Client()))
	if err := svc.EnsureSchema(ctx); err != nil {
		panic(err)
	}

	_, _ = svc.Add(ctx, "user-42", 100, credits.Reason("welcome bonus"))
	_, _ = svc.Deduct(ctx, "user-42", 30, credits.Ref("message", "m-1"))
	_, err := svc.Deduct(ctx, "user-42", 80)
	fmt.Println(errors.Is(err, credits.ErrInsufficientCredits))

	b, _ := svc.Balance(ctx, "user-42")
	fmt.Printf("balance %d, available %d\n", b.Balance, b.Available)
	es, _, _ := svc.History(ctx, "user-42", credits.HistoryQuery{})
	for _, e := range es {
		fmt.Println(e.Kind, e.Amount)
	}
	// Output:
	// true
	// balance 70, available 70
	// debit -30
	// credit 100
}

// A hold reserves credits before the cost is known; the capture spends the
// real cost and releases the rest.
func ExampleService_Reserve() {
	db, stop := exampleDB()
	defer stop()
	ctx := context.Background()
	svc := credits.NewService(db, tx.NewRunner(db.Client()))
	if err := svc.EnsureSchema(ctx); err != nil {
		panic(err)
	}
	_, _ = svc.Add(ctx, "user-42", 100)

	h, _ := svc.Reserve(ctx, "user-42", 40, time.Minute, credits.Ref("message", "m-2"))
	b, _ := svc.Balance(ctx, "user-42")
	fmt.Printf("held %d, available %d\n", b.Held, b.Available)

	e, _ := svc.Capture(ctx, h.ID, 25) // the reply cost 25
	b, _ = svc.Balance(ctx, "user-42")
	fmt.Printf("captured %d: balance %d, held %d, available %d\n", -e.Amount, b.Balance, b.Held, b.Available)
	// Output:
	// held 40, available 60
	// captured 25: balance 75, held 0, available 75
}

// The same idempotency key returns the first result; other parameters are
// refused.
func ExampleIdempotencyKey() {
	db, stop := exampleDB()
	defer stop()
	ctx := context.Background()
	svc := credits.NewService(db, tx.NewRunner(db.Client()))
	if err := svc.EnsureSchema(ctx); err != nil {
		panic(err)
	}

	first, _ := svc.Add(ctx, "user-42", 50, credits.IdempotencyKey("order-7"))
	again, _ := svc.Add(ctx, "user-42", 50, credits.IdempotencyKey("order-7"))
	_, err := svc.Add(ctx, "user-42", 60, credits.IdempotencyKey("order-7"))
	b, _ := svc.Balance(ctx, "user-42")
	fmt.Println(first.ID == again.ID, errors.Is(err, credits.ErrIdempotencyConflict), b.Balance)
	// Output: true true 50
}

// Reconcile checks every account against its ledger.
func ExampleService_Reconcile() {
	db, stop := exampleDB()
	defer stop()
	ctx := context.Background()
	svc := credits.NewService(db, tx.NewRunner(db.Client()))
	if err := svc.EnsureSchema(ctx); err != nil {
		panic(err)
	}
	_, _ = svc.Add(ctx, "a", 10)
	_, _ = svc.Transfer(ctx, "a", "b", 4)

	r, _ := svc.Reconcile(ctx)
	fmt.Println(r.Accounts, r.Entries, len(r.Mismatches))
	// Output: 2 3 0
}
