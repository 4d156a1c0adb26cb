package decorator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// env is one test's world: a fresh database and a Runner that reports to
// rec.
type env struct {
	client *mongo.Client
	db     *mongo.Database
	coll   *mongo.Collection
	rec    *recorder
	runner *tx.Runner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	client := testenv.Client(t)
	db := testenv.NewDB(t, client)
	// A real server may refuse to create a collection inside a transaction.
	for _, c := range []string{"docs", "accounts", "entries", "audit"} {
		require.NoError(t, db.CreateCollection(context.Background(), c))
	}
	rec := &recorder{}
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

// failTransient makes the next times runs of cmd fail with a write
// conflict labelled TransientTransactionError.
func (e *env) failTransient(t *testing.T, cmd string, times int) {
	t.Helper()
	testenv.FailCommand(t, e.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: times}}},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{cmd}},
			{Key: "errorCode", Value: 112}, // WriteConflict
			{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
		}},
	})
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []tx.Event
}

func (r *recorder) Observe(e tx.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// names returns "kind name" of every event.
func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind.String()+" "+e.Name)
	}
	return out
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
