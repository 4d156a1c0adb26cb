package tx_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/mongotest"
	"github.com/txkit/txkit/tx"
)

// connect starts an in-memory mongotest server and connects to it. A real
// application connects to its replica set instead:
// mongo.Connect(options.Client().ApplyURI(uri)).
func connect() (client *mongo.Client, stop func()) {
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

// failNextCommit makes the next commit fail with a TransientTransactionError,
// as a failover or a write conflict would.
func failNextCommit(ctx context.Context, client *mongo.Client) {
	err := client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 251},
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
	}).Err()
	if err != nil {
		panic(err)
	}
}

var errInsufficientFunds = errors.New("insufficient funds")

func printBalances(ctx context.Context, accounts *mongo.Collection) {
	cur, err := accounts.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		panic(err)
	}
	var all []struct {
		ID      string `bson:"_id"`
		Balance int64  `bson:"balance"`
	}
	if err := cur.All(ctx, &all); err != nil {
		panic(err)
	}
	for _, a := range all {
		fmt.Printf("%s: %d\n", a.ID, a.Balance)
	}
}

func ExampleRunner_Run() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	accounts := client.Database("bank").Collection("accounts")
	_, _ = accounts.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: "alice"}, {Key: "balance", Value: int64(100)}},
		bson.D{{Key: "_id", Value: "bob"}, {Key: "balance", Value: int64(0)}},
	})

	runner := tx.NewRunner(client)
	transfer := func(ctx context.Context, from, to string, amount int64) error {
		return runner.Run(ctx, func(ctx context.Context) error {
			// A guarded write: the debit happens only if the balance covers it.
			res, err := accounts.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: from}, {Key: "balance", Value: bson.D{{Key: "$gte", Value: amount}}}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -amount}}}})
			if err != nil {
				return err
			}
			if res.ModifiedCount == 0 {
				return errInsufficientFunds // aborts: nothing of this transfer is kept
			}
			_, err = accounts.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: to}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: amount}}}})
			return err
		})
	}

	fmt.Println(transfer(ctx, "alice", "bob", 30))
	fmt.Println(transfer(ctx, "alice", "bob", 500))
	printBalances(ctx, accounts)
	// Output:
	// <nil>
	// insufficient funds
	// alice: 70
	// bob: 30
}

func ExampleDo() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")

	n, err := tx.Do(ctx, runner, func(ctx context.Context) (int64, error) {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}, {Key: "user", Value: "u1"}}); err != nil {
			return 0, err
		}
		return orders.CountDocuments(ctx, bson.D{{Key: "user", Value: "u1"}})
	})
	fmt.Println(n, err)
	// Output: 1 <nil>
}

func ExampleRunner_Close() {
	client, stop := connect()
	defer stop()

	// Requests of this service are bounded by 5 s: an abort after that
	// gets 1 s more, and a transaction whose abort is not confirmed by then
	// is left to the reaper, which kills it once the database answers.
	runner := tx.NewRunner(client, tx.WithCleanupTimeout(time.Second))
	defer func() {
		// Before the client disconnects (defers run last first).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := runner.Close(ctx); err != nil {
			fmt.Println(err) // left to the server's transaction lifetime limit
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	orders := client.Database("shop").Collection("orders")
	err := runner.Run(ctx, func(ctx context.Context) error {
		_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}})
		return err
	})
	fmt.Println(err)
	// Output: <nil>
}

func ExampleWithOrphanReaping() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	db := client.Database("shop")

	registry := db.Collection("tx_sessions") // one for all the service's processes
	runner := tx.NewRunner(client, tx.WithOrphanReaping(tx.OrphanReaping{
		Collection: registry,
		// Stable across restarts, unique among running processes: a
		// StatefulSet pod's name. Empty: a random one.
		Instance: os.Getenv("POD_NAME"),
	}))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = runner.Close(ctx) // stops the lease; removes this process's records
	}()

	err := runner.Run(ctx, func(ctx context.Context) error {
		_, err := db.Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}})
		return err
	})
	leases, _ := registry.CountDocuments(ctx, bson.D{{Key: "kind", Value: "lease"}})
	sessions, _ := registry.CountDocuments(ctx, bson.D{{Key: "kind", Value: "session"}})
	fmt.Println(err, leases, sessions)
	// Output: <nil> 1 1
}

func ExampleAfterCommit() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")

	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(ctx context.Context) {
			fmt.Println("email: order o1 confirmed")
		})
		fmt.Println("order inserted, not committed yet")
		return nil
	})
	fmt.Println("Run returned", err)
	// Output:
	// order inserted, not committed yet
	// email: order o1 confirmed
	// Run returned <nil>
}

// Example_rerunnableWrong shows a callback that is not re-runnable: its
// side effect happens again when the transaction is retried.
func Example_rerunnableWrong() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")
	failNextCommit(ctx, client)

	emailsSent := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		emailsSent++ // WRONG: the commit fails, the callback runs again, a second email goes out //txcheck:ignore
		return nil
	})
	fmt.Println("error:", err, "emails sent:", emailsSent)
	// Output: error: <nil> emails sent: 2
}

// Example_rerunnableRight is the same unit of work, re-runnable: the effect
// that must happen once waits for the final commit.
func Example_rerunnableRight() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")
	failNextCommit(ctx, client)

	emailsSent := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		tx.AfterCommit(ctx, func(context.Context) { emailsSent++ }) // once, after the commit that counts
		return nil
	})
	fmt.Println("error:", err, "emails sent:", emailsSent)
	// Output: error: <nil> emails sent: 1
}

func ExampleRunner_Begin() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")

	placeOrder := func(ctx context.Context) error {
		ctx, t, err := runner.Begin(ctx, tx.WithName("shop.placeOrder"))
		if err != nil {
			return err
		}
		defer t.Rollback(ctx) // does nothing once Commit has run
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		// A transient error here (errors.Is(err, tx.ErrTransient)) means: run placeOrder again.
		return t.Commit(ctx)
	}

	fmt.Println(placeOrder(ctx))
	n, _ := orders.CountDocuments(ctx, bson.D{})
	fmt.Println(n, "order")
	// Output:
	// <nil>
	// 1 order
}

func ExampleWithPropagation() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	db := client.Database("shop")

	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := db.Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}}); err != nil {
			return err
		}
		// The audit record commits on its own, whatever happens to the order.
		err := runner.Run(ctx, func(ctx context.Context) error {
			_, err := db.Collection("audit").InsertOne(ctx, bson.D{{Key: "event", Value: "order attempted"}})
			return err
		}, tx.WithPropagation(tx.RequiresNew))
		if err != nil {
			return err
		}
		return errInsufficientFunds
	})
	orders, _ := db.Collection("orders").CountDocuments(ctx, bson.D{})
	audit, _ := db.Collection("audit").CountDocuments(ctx, bson.D{})
	fmt.Println(err, "| orders:", orders, "| audit records:", audit)
	// Output: insufficient funds | orders: 0 | audit records: 1
}

// printObserver prints the events of the scopes it observes.
type printObserver struct{}

func (printObserver) Observe(e tx.Event) {
	fmt.Printf("%s %s attempt=%d joined=%t err=%v labels=%v\n", e.Kind, e.Name, e.Attempt, e.Joined, e.Err != nil, e.Labels)
}

func ExampleWithObserver() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client, tx.WithObserver(printObserver{}))
	orders := client.Database("shop").Collection("orders")
	failNextCommit(ctx, client)

	_ = runner.Run(ctx, func(ctx context.Context) error {
		_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}})
		return err
	}, tx.WithName("shop.placeOrder"))
	// Output:
	// begin shop.placeOrder attempt=1 joined=false err=false labels=[]
	// retry shop.placeOrder attempt=1 joined=false err=true labels=[TransientTransactionError]
	// begin shop.placeOrder attempt=2 joined=false err=false labels=[]
	// commit shop.placeOrder attempt=2 joined=false err=false labels=[]
}

// failCommitsUnknown makes every commit answer "outcome unknown", as a
// primary that cannot confirm its write concern would.
func failCommitsUnknown(ctx context.Context, client *mongo.Client) {
	err := client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction"}},
			{Key: "errorCode", Value: 64},
			{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}},
		}},
	}).Err()
	if err != nil {
		panic(err)
	}
}

func ExampleErrCommitUnknown() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	payments := client.Database("shop").Collection("payments")
	failCommitsUnknown(ctx, client)

	err := runner.Run(ctx, func(ctx context.Context) error {
		_, err := payments.InsertOne(ctx, bson.D{{Key: "_id", Value: "p1"}, {Key: "amount", Value: 500}})
		return err
	}, tx.WithMaxAttempts(2))
	switch {
	case errors.Is(err, tx.ErrCommitUnknown):
		// It may have committed: look before doing it again.
		fmt.Println("outcome unknown: read p1 (or repeat with the same idempotency key) before retrying")
	case err != nil:
		fmt.Println("not applied:", err)
	}
	// Output:
	// outcome unknown: read p1 (or repeat with the same idempotency key) before retrying
}

var errStaleQuote = errors.New("quote changed meanwhile")

func ExampleRetryable() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	quotes := client.Database("shop").Collection("quotes")

	attempts := 0
	err := runner.Run(ctx, func(ctx context.Context) error {
		attempts++ //txcheck:ignore counts the attempts
		if _, err := quotes.InsertOne(ctx, bson.D{{Key: "attempt", Value: attempts}}); err != nil {
			return err
		}
		if attempts == 1 {
			// A guard of your own lost a race: run the transaction again,
			// on a new snapshot. No server error label is forged.
			return tx.Retryable(errStaleQuote)
		}
		return nil
	})
	n, _ := quotes.CountDocuments(ctx, bson.D{})
	fmt.Println("error:", err, "| attempts:", attempts, "| committed documents:", n)
	// Output:
	// error: <nil> | attempts: 2 | committed documents: 1
}

func ExampleBeforeCommit() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")

	err := runner.Run(ctx, func(ctx context.Context) error {
		// Runs inside the transaction, after this function, before the commit.
		err := tx.BeforeCommit(ctx, func(ctx context.Context) error {
			n, err := orders.CountDocuments(ctx, bson.D{})
			if err == nil && n > 1 {
				return errors.New("one order per transaction")
			}
			return err
		})
		if err != nil {
			return err
		}
		// Runs once the transaction ended, told how.
		tx.AfterCompletion(ctx, func(ctx context.Context, o tx.Outcome) {
			fmt.Println("transaction", o)
		})
		_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}})
		return err
	})
	fmt.Println("Run returned", err)
	// Output:
	// transaction committed
	// Run returned <nil>
}

var errDeclined = errors.New("card declined")

func ExampleWithNoRollbackFor() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	attempts := client.Database("shop").Collection("payment_attempts")

	// The attempt is recorded even though the payment is declined.
	err := runner.Run(ctx, func(ctx context.Context) error {
		if _, err := attempts.InsertOne(ctx, bson.D{{Key: "_id", Value: "a1"}, {Key: "result", Value: "declined"}}); err != nil {
			return err
		}
		return errDeclined
	}, tx.WithNoRollbackFor(errDeclined))
	n, _ := attempts.CountDocuments(ctx, bson.D{})
	fmt.Println("error:", err, "| recorded attempts:", n)
	// Output:
	// error: card declined | recorded attempts: 1
}

func ExampleInTransaction() {
	client, stop := connect()
	defer stop()
	ctx := context.Background()
	runner := tx.NewRunner(client)
	orders := client.Database("shop").Collection("orders")

	// A transaction started with the driver, not with txkit.
	sess, err := client.StartSession()
	if err != nil {
		panic(err)
	}
	defer sess.EndSession(ctx)
	if err := sess.StartTransaction(); err != nil {
		panic(err)
	}
	sctx := mongo.NewSessionContext(ctx, sess)
	fmt.Println("in a transaction:", tx.InTransaction(sctx))

	// Run joins it: it neither commits nor aborts it; its owner does.
	err = runner.Run(sctx, func(ctx context.Context) error {
		_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "o1"}})
		return err
	})
	before, _ := orders.CountDocuments(ctx, bson.D{})
	if err := sess.CommitTransaction(ctx); err != nil {
		panic(err)
	}
	after, _ := orders.CountDocuments(ctx, bson.D{})
	fmt.Println("Run:", err, "| before the owner's commit:", before, "| after:", after)
	// Output:
	// in a transaction: true
	// Run: <nil> | before the owner's commit: 0 | after: 1
}
