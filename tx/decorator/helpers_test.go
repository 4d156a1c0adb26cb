package decorator_test

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

// env is one test's world: a fresh database and a Runner that reports to
// rec.
type env struct {
	client *mongo.Client
	db     *mongo.Database
	coll   *mongo.Collection
	rec    *txtest.Recorder
	runner *tx.Runner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	client := testenv.Client(t)
	db := testenv.NewDB(t, client)
	// A real server may refuse to create a collection inside a transaction.
	for _, c := range []string{"docs", "accounts", "entries", "audit", "orders"} {
		require.NoError(t, db.CreateCollection(context.Background(), c))
	}
	rec := &txtest.Recorder{}
	return &env{client: client, db: db, coll: db.Collection("docs"), rec: rec, runner: tx.NewRunner(client, tx.WithObserver(rec))}
}

// count returns how many documents coll holds, read outside any
// transaction.
func count(t *testing.T, coll *mongo.Collection) int64 {
	t.Helper()
	n, err := coll.CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	return n
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// names returns "kind name" of each recorded event.
func names(r *txtest.Recorder) []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, e.Kind.String()+" "+e.Name)
	}
	return out
}
