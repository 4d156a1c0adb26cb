package decorator_test

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/fx"

	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/decorator"
	"github.com/txkit/txkit/tx/decorator/internal/example"
)

// startMongo starts an in-process MongoDB (mongotest) and connects to it.
// Call stop when done.
func startMongo() (client *mongo.Client, stop func()) {
	srv, err := mongotest.NewServer()
	if err != nil {
		panic(err)
	}
	client, err = mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		panic(err)
	}
	return client, func() {
		_ = client.Disconnect(context.Background())
		_ = srv.Close()
	}
}

var errInsufficientCredits = errors.New("insufficient credits")

// Users is a plain repository: its methods know nothing of transactions,
// they use the session that ctx carries, if any.
type Users struct{ coll *mongo.Collection }

// Move moves amount credits from one user to another: a guarded debit
// (never read-check-save) and a credit, which must commit together.
func (u *Users) Move(ctx context.Context, from, to string, amount int64) error {
	res, err := u.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: from}, {Key: "credits", Value: bson.D{{Key: "$gte", Value: amount}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "credits", Value: -amount}}}})
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("move from %s: %w", from, errInsufficientCredits)
	}
	res, err = u.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: to}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "credits", Value: amount}}}})
	if err == nil && res.MatchedCount == 0 {
		err = fmt.Errorf("move to %s: no such user", to)
	}
	return err
}

// Print prints every user's credits.
func (u *Users) Print(ctx context.Context) {
	cur, err := u.coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		panic(err)
	}
	var users []struct {
		ID      string `bson:"_id"`
		Credits int64  `bson:"credits"`
	}
	if err := cur.All(ctx, &users); err != nil {
		panic(err)
	}
	for _, u := range users {
		fmt.Printf("%s: %d\n", u.ID, u.Credits)
	}
}

// newUsers returns the users alice (100 credits) and bob (0).
func newUsers(ctx context.Context, client *mongo.Client) *Users {
	coll := client.Database("shop").Collection("users")
	_, err := coll.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "alice"}, {Key: "credits", Value: 100}},
		bson.D{{Key: "_id", Value: "bob"}, {Key: "credits", Value: 0}},
	})
	if err != nil {
		panic(err)
	}
	return &Users{coll: coll}
}

// Pattern 1 of the design note, the simple callback
// (with_beanie_transaction): Runner.Run runs a function in a transaction.
func Example_callback() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	users := newUsers(ctx, client)
	runner := tx.NewRunner(client)

	transfer := func(ctx context.Context, from, to string, amount int64) error {
		return runner.Run(ctx, func(ctx context.Context) error {
			return users.Move(ctx, from, to, amount)
		})
	}

	fmt.Println(transfer(ctx, "alice", "bob", 30))
	fmt.Println(transfer(ctx, "alice", "bob", 500))
	fmt.Println(transfer(ctx, "alice", "carol", 10)) // the debit is rolled back
	users.Print(ctx)
	// Output:
	// <nil>
	// move from alice: insufficient credits
	// move to carol: no such user
	// alice: 70
	// bob: 30
}

// Pattern 2, the scoped manager (async with tx_manager.session()):
// Runner.Begin returns a ctx that carries the transaction and a Tx to end
// it with.
func Example_scopedManager() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	users := newUsers(ctx, client)
	runner := tx.NewRunner(client)

	err := func() error {
		ctx, t, err := runner.Begin(ctx)
		if err != nil {
			return err
		}
		defer t.Rollback(ctx) // does nothing after Commit
		if err := users.Move(ctx, "alice", "bob", 40); err != nil {
			return err
		}
		return t.Commit(ctx) // unlike Run, it cannot re-run the block
	}()

	fmt.Println(err)
	users.Print(ctx)
	// Output:
	// <nil>
	// alice: 60
	// bob: 40
}

// Pattern 3, the decorator (@transactional), for one function: the
// wrapped function has the same signature as the original.
func ExampleTransactionalErr3() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	users := newUsers(ctx, client)
	runner := tx.NewRunner(client)

	move := decorator.TransactionalErr3(runner, users.Move)

	fmt.Println(move(ctx, "alice", "bob", 25))
	fmt.Println(move(ctx, "alice", "carol", 25))
	users.Print(ctx)
	// Output:
	// <nil>
	// move to carol: no such user
	// alice: 75
	// bob: 25
}

// A decorated function called inside a transaction joins it: here the
// second move fails, so the first is rolled back with it.
func ExampleTransactional() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	users := newUsers(ctx, client)
	runner := tx.NewRunner(client)

	move := decorator.TransactionalErr3(runner, users.Move)
	both := decorator.Transactional(runner, func(ctx context.Context) (int, error) {
		if err := move(ctx, "alice", "bob", 60); err != nil {
			return 0, err
		}
		return 2, move(ctx, "alice", "bob", 60)
	}, tx.WithName("two-moves"))

	n, err := both(ctx)
	fmt.Println(n, err)
	users.Print(ctx)
	// Output:
	// 0 move from alice: insufficient credits
	// alice: 100
	// bob: 0
}

// Pattern 3 for a whole service: example.Transactional was generated by
// cmd/txdecorate from the example.Ledger interface; fx.Decorate gives
// every consumer of Ledger the transactional version.
func Example_interfaceDecorator() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()

	app := fx.New(
		fx.NopLogger,
		fx.Supply(client.Database("bank")),
		fx.Provide(
			func() *tx.Runner { return tx.NewRunner(client) },
			func(db *mongo.Database) example.Ledger { return example.NewStore(db) },
		),
		fx.Decorate(example.Transactional),
		fx.Invoke(func(ledger example.Ledger) {
			_ = ledger.Open(ctx, "alice", 100)
			_ = ledger.Open(ctx, "bob", 0)
			_, err := ledger.Transfer(ctx, "alice", "carol", 30) // rolled back
			fmt.Println(err)
			_, err = ledger.Transfer(ctx, "alice", "bob", 30)
			fmt.Println(err)
			a, _ := ledger.Balance(ctx, "alice")
			b, _ := ledger.Balance(ctx, "bob")
			fmt.Println(a, b)
		}),
	)
	if err := app.Err(); err != nil {
		panic(err)
	}
	// Output:
	// transfer to carol: no such account
	// <nil>
	// 70 30
}

// Decorated services calling each other: Orders' decorator starts the
// transaction (max_attempts=3), and the Ledger's decorator, called inside
// it, joins it; its own max_attempts=5 and timeout give way to the
// owner's. The order and its payment commit together or not at all.
func Example_servicesCallingEachOther() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	db := client.Database("shop")
	runner := tx.NewRunner(client)

	store := example.NewStore(db)
	ledger := example.Transactional(store, runner)
	orders := example.TransactionalOrders(example.NewOrderStore(db, ledger), runner)
	_ = ledger.Open(ctx, "alice", 100)
	_ = ledger.Open(ctx, "shop", 0)

	fmt.Println(orders.Place(ctx, "o1", "alice", "shop", 30))
	fmt.Println(orders.Place(ctx, "o2", "alice", "shop", 500)) // the order is rolled back too

	a, _ := store.Balance(ctx, "alice")
	n, _ := db.Collection("orders").CountDocuments(ctx, bson.D{})
	fmt.Println("alice:", a, "orders:", n)
	// Output:
	// <nil>
	// transfer from alice: insufficient credits
	// alice: 70 orders: 1
}
