package batch_test

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/batch"
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

// Pattern 4 of the design note, the batch (tx_manager.execute_batch):
// update the user, write the credit log and queue a notification, all or
// nothing. The notification is delivered once, after the commit.
func Example() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	db := client.Database("shop")
	users, logs, notes := db.Collection("users"), db.Collection("credit_log"), db.Collection("notifications")
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: "alice"}, {Key: "credits", Value: 0}}); err != nil {
		panic(err)
	}

	updateUser := func(ctx context.Context) error {
		_, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "alice"}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "credits", Value: 100}}}})
		return err
	}
	createLog := func(ctx context.Context) error {
		_, err := logs.InsertOne(ctx, bson.D{{Key: "user", Value: "alice"}, {Key: "amount", Value: 100}})
		return err
	}
	queueNotification := func(ctx context.Context) error {
		if _, err := notes.InsertOne(ctx, bson.D{{Key: "user", Value: "alice"}, {Key: "text", Value: "+100 credits"}}); err != nil {
			return err
		}
		// Steps may run again on a retry: effects outside MongoDB wait
		// for the commit.
		tx.AfterCommit(ctx, func(context.Context) { fmt.Println("notified alice") })
		return nil
	}

	exec := batch.NewExecutor(tx.NewRunner(client), tx.WithName("grant-credits"))
	err := exec.Execute(ctx,
		batch.Step{Name: "update user", Run: updateUser},
		batch.Step{Name: "create log", Run: createLog},
		batch.Step{Name: "queue notification", Run: queueNotification},
	)
	fmt.Println("batch:", err)

	var alice struct {
		Credits int64 `bson:"credits"`
	}
	_ = users.FindOne(ctx, bson.D{{Key: "_id", Value: "alice"}}).Decode(&alice)
	n, _ := logs.CountDocuments(ctx, bson.D{})
	fmt.Println("credits:", alice.Credits, "log entries:", n)
	// Output:
	// notified alice
	// batch: <nil>
	// credits: 100 log entries: 1
}

// The first failing step rolls the whole batch back and says which step
// it was.
func ExampleExecutor_Execute() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	logs := client.Database("shop").Collection("credit_log")
	errLimit := errors.New("daily limit reached")

	exec := batch.NewExecutor(tx.NewRunner(client))
	err := exec.Execute(ctx,
		batch.Step{Name: "log", Run: func(ctx context.Context) error {
			_, err := logs.InsertOne(ctx, bson.D{{Key: "amount", Value: 100}})
			return err
		}},
		batch.Step{Name: "check limit", Run: func(ctx context.Context) error {
			return errLimit
		}},
	)

	var se *batch.StepError
	if errors.As(err, &se) {
		fmt.Println("failed step:", se.Index, se.Name)
	}
	fmt.Println(errors.Is(err, errLimit), err)
	n, _ := logs.CountDocuments(ctx, bson.D{})
	fmt.Println("log entries:", n)
	// Output:
	// failed step: 1 check limit
	// true batch step 1 (check limit): daily limit reached
	// log entries: 0
}

// Collect runs steps that return a value and returns the values, in
// order, once the transaction committed.
func ExampleCollect() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	orders := client.Database("shop").Collection("orders")

	place := func(item string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			id := "order-" + item
			_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "item", Value: item}})
			return id, err
		}
	}

	ids, err := batch.Collect(ctx, batch.NewExecutor(tx.NewRunner(client)),
		place("book"), place("pen"), place("ink"))

	fmt.Println(ids, err)
	// Output:
	// [order-book order-pen order-ink] <nil>
}

// printer is a tx.Observer that prints what happens.
type printer struct{}

func (printer) Observe(e tx.Event) { fmt.Println(e.Kind, e.Name) }

// Every step is reported to the runner's observer, with its index and
// name, between the batch's own events.
func Example_observe() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	logs := client.Database("shop").Collection("credit_log")
	insert := func(ctx context.Context) error {
		_, err := logs.InsertOne(ctx, bson.D{{Key: "amount", Value: 100}})
		return err
	}

	runner := tx.NewRunner(client, tx.WithObserver(printer{}))
	_ = batch.NewExecutor(runner, tx.WithName("grant-credits")).Execute(ctx,
		batch.Step{Name: "update user", Run: insert},
		batch.Step{Name: "create log", Run: insert},
	)
	// Output:
	// begin grant-credits
	// begin step 0 update user
	// end step 0 update user
	// begin step 1 create log
	// end step 1 create log
	// commit grant-credits
}

// A batch whose ctx is cancelled stops before its next step: that step and
// the rest never run, and what ran is rolled back.
func Example_cancel() {
	client, stop := startMongo()
	defer stop()
	logs := client.Database("shop").Collection("credit_log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	err := batch.NewExecutor(tx.NewRunner(client)).Execute(ctx,
		batch.Step{Name: "log", Run: func(ctx context.Context) error {
			_, err := logs.InsertOne(ctx, bson.D{{Key: "amount", Value: 100}})
			cancel() // say, the HTTP client went away
			return err
		}},
		batch.Step{Name: "charge card", Run: func(ctx context.Context) error {
			fmt.Println("charging") // never printed
			return nil
		}},
	)

	var se *batch.StoppedError
	if errors.As(err, &se) {
		fmt.Println("did not run: step", se.Index, se.Name)
	}
	fmt.Println(errors.Is(err, context.Canceled), err)
	n, _ := logs.CountDocuments(context.Background(), bson.D{})
	fmt.Println("log entries:", n)
	// Output:
	// did not run: step 1 charge card
	// true batch stopped before step 1 (charge card): context canceled
	// log entries: 0
}

// An executor built with owner-only options joins the caller's
// transaction all the same: its attempt limit is the owner's business,
// and a failing step rolls back the caller's writes too.
func Example_nested() {
	client, stop := startMongo()
	defer stop()
	ctx := context.Background()
	logs := client.Database("shop").Collection("credit_log")
	runner := tx.NewRunner(client)
	insert := func(ctx context.Context) error {
		_, err := logs.InsertOne(ctx, bson.D{{Key: "amount", Value: 100}})
		return err
	}

	exec := batch.NewExecutor(runner, tx.WithMaxAttempts(2))
	err := runner.Run(ctx, func(ctx context.Context) error {
		if err := insert(ctx); err != nil {
			return err
		}
		return exec.Execute(ctx, batch.Step{Name: "log", Run: insert})
	}, tx.WithName("grant"))
	fmt.Println("joined:", err)

	err = runner.Run(ctx, func(ctx context.Context) error {
		if err := insert(ctx); err != nil {
			return err
		}
		return exec.Execute(ctx, batch.Step{Name: "refuse", Run: func(context.Context) error {
			return errors.New("limit reached")
		}})
	}, tx.WithName("grant"))
	fmt.Println("failed:", err)

	n, _ := logs.CountDocuments(ctx, bson.D{})
	fmt.Println("log entries:", n)
	// Output:
	// joined: <nil>
	// failed: batch step 0 (refuse): limit reached
	// log entries: 2
}
