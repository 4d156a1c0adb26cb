package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// A statement cut by the end of the scope's ctx may still reach the
// server after the abort: if it was the transaction's first, it starts
// the transaction there and holds what it writes. The runner knows the
// ctx ended even when nobody hands it the statement's error: a manual
// scope's Rollback never sees it, and a callback may return another
// error. Either way the attempt is left open, and its session goes to the
// reaper (finding tx-attack24-rollback-after-cut).
func TestAStatementCutByTheEndOfTheScopesCtxLeavesNothingOpen(t *testing.T) {
	update := func(e *env, ctx context.Context) error {
		_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "late"}}}})
		return err
	}
	tests := []struct {
		name string
		run  func(e *env, ctx context.Context) error
	}{
		{name: "a manual scope is rolled back", run: func(e *env, ctx context.Context) error {
			ctx, txn, err := e.runner.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = txn.Rollback(ctx) }()
			return update(e, ctx)
		}},
		{name: "the callback returns another error", run: func(e *env, ctx context.Context) error {
			return e.runner.Run(ctx, func(ctx context.Context) error {
				if err := update(e, ctx); err != nil {
					return errBusiness
				}
				return nil
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithCleanupTimeout(reapCleanup))
			e.commitFaults.Store(true) // this test checks the server itself
			admin := testenv.Connect(t, e.uri)
			seedDoc(t, e)
			// The first statement waits 1 s on the server, then runs.
			e.failCommand(t, 1, bson.D{
				{Key: "failCommands", Value: bson.A{"update"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: int32(1000)},
			})
			// Cancelled, not a deadline: the driver sends no maxTimeMS, so
			// the server runs the statement once its block ends.
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			defer cancel()
			require.Error(t, tt.run(e, ctx))
			time.Sleep(1200 * time.Millisecond) // the statement reaches the transaction
			requireNothingLeftOpen(t, e, admin, 2*time.Second)
		})
	}
}
