package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
	"github.com/txkit/txkit/tx/txtest"
)

// env is one test's world: a fresh collection and a Runner that reports to
// rec.
type env struct {
	client *mongo.Client
	coll   *mongo.Collection
	rec    *txtest.Recorder
	runner *tx.Runner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	client := testenv.Client(t)
	db := testenv.NewDB(t, client)
	// A real server may refuse to create a collection inside a transaction.
	require.NoError(t, db.CreateCollection(context.Background(), "docs"))
	rec := &txtest.Recorder{}
	return &env{client: client, coll: db.Collection("docs"), rec: rec, runner: tx.NewRunner(client, tx.WithObserver(rec))}
}

// ids returns the _ids in the collection, read outside any transaction.
func (e *env) ids(t *testing.T) []string {
	t.Helper()
	cur, err := e.coll.Find(context.Background(), bson.D{})
	require.NoError(t, err)
	var docs []struct {
		ID string `bson:"_id"`
	}
	require.NoError(t, cur.All(context.Background(), &docs))
	ids := []string{}
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids
}

// insert returns a step function that inserts a document with _id id.
func (e *env) insert(id string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}})
		return err
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventsOf returns the recorded events of kind named name.
func eventsOf(r *txtest.Recorder, kind tx.EventKind, name string) []tx.Event {
	var out []tx.Event
	for _, e := range r.Of(kind) {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}
