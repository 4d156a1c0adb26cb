package tx_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// BenchmarkRunner compares Runner.Run with the driver's own
// Session.WithTransaction doing the same insert + update transaction with
// the same transaction options against the same server, so that txkit's
// overhead reads as the ratio of the two (ns/op and allocs/op).
func BenchmarkRunner(b *testing.B) {
	client := testenv.Client(b)
	db := testenv.NewDB(b, client)
	ctx := context.Background()

	work := func(coll *mongo.Collection, id int) func(context.Context) error {
		return func(ctx context.Context) error {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 1}}); err != nil {
				return err
			}
			_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
			return err
		}
	}
	collection := func(b *testing.B, name string) *mongo.Collection {
		_ = db.Collection(name).Drop(ctx)
		if err := db.CreateCollection(ctx, name); err != nil {
			b.Fatal(err)
		}
		return db.Collection(name)
	}

	b.Run("driver", func(b *testing.B) {
		coll := collection(b, "driver")
		txnOpts := options.Transaction().
			SetReadConcern(readconcern.Snapshot()).
			SetWriteConcern(writeconcern.Majority()).
			SetReadPreference(readpref.Primary())
		b.ReportAllocs()
		id := 0
		for b.Loop() {
			id++
			fn := work(coll, id)
			sess, err := client.StartSession()
			if err != nil {
				b.Fatal(err)
			}
			_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) { return nil, fn(ctx) }, txnOpts)
			sess.EndSession(ctx)
			if err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("txkit", func(b *testing.B) {
		coll := collection(b, "txkit")
		runner := tx.NewRunner(client)
		b.ReportAllocs()
		id := 0
		for b.Loop() {
			id++
			if err := runner.Run(ctx, work(coll, id)); err != nil {
				b.Fatal(err)
			}
		}
	})

	// With orphan reaping: a session is recorded before its first
	// transaction only, so the driver's session pool makes it free in
	// steady state.
	b.Run("txkit-orphan-reaping", func(b *testing.B) {
		coll := collection(b, "reaping")
		runner := tx.NewRunner(client, tx.WithOrphanReaping(tx.OrphanReaping{Collection: db.Collection("sessions"), Instance: "bench"}))
		defer func() { _ = runner.Close(ctx) }()
		b.ReportAllocs()
		id := 0
		for b.Loop() {
			id++
			if err := runner.Run(ctx, work(coll, id)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJoin measures a scope that joins an enclosing transaction: pure
// txkit bookkeeping, with no round trip to the server.
func BenchmarkJoin(b *testing.B) {
	client := testenv.Client(b)
	runner := tx.NewRunner(client)
	noop := func(context.Context) error { return nil }
	err := runner.Run(context.Background(), func(ctx context.Context) error {
		b.ReportAllocs()
		for b.Loop() {
			if err := runner.Run(ctx, noop); err != nil {
				return err
			}
		}
		return nil
	}, tx.WithName("bench"))
	if err != nil {
		b.Fatal(err)
	}
}
