package tx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// The driver resends a commit by itself once after a retryable error (a
// ShutdownInProgress write concern error: the primary applied the commit
// and is going away) and returns only the resend's answer. When that
// resend is refused before it ran with TransientTransactionError, the
// runner's first send of the commit looks refused, though a wire send
// before it applied: the runner must not run the transaction again
// (finding tx-attack26-driver-resend-transient).
func TestACommitWhoseDriverResendIsRefusedAsTransientIsNotRunAgain(t *testing.T) {
	tests := []struct {
		name   string
		give   bson.D // the fail point the driver's own resend meets
		manual bool   // through Begin and Tx.Commit, whose ErrTransient tells the caller to run it again
	}{
		{name: "a write conflict", give: failData("commitTransaction", codeWriteConflict, "TransientTransactionError")},
		{name: "a write conflict, in a manual scope", give: failData("commitTransaction", codeWriteConflict, "TransientTransactionError"), manual: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fastBackoff)
			e.commitFaults.Store(true)
			var armed bool
			var arm func()
			mon := &event.CommandMonitor{
				Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
					if ev.CommandName == "commitTransaction" && !armed && arm != nil {
						armed = true
						arm() // between the driver's first send and its own resend
					}
				},
			}
			client := testenv.Connect(t, e.uri, options.Client().SetMonitor(mon))
			fail := func(data bson.D) {
				testenv.FailCommand(t, client, bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
					{Key: "data", Value: data},
				})
			}
			arm = func() { fail(tt.give) }
			runner := tx.NewRunner(client, fastBackoff)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				assert.NoError(t, runner.Close(ctx))
			})
			coll := client.Database(e.db.Name()).Collection("docs")
			// The first send applies; its reply has a retryable write
			// concern error, so the driver sends the commit again itself.
			fail(bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: wce(91)},
			})
			var outcome tx.Outcome
			runs := 0
			work := func(ctx context.Context) error {
				runs++ //txcheck:ignore counts the runs
				tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "acct"}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 10}}}}, options.UpdateOne().SetUpsert(true))
				return err
			}
			var err error
			if tt.manual {
				// The caller runs the unit of work again when told
				// ErrTransient, as Tx's doc says.
				for range 3 {
					tctx, txn, berr := runner.Begin(ctxTimeout(t), tx.WithMaxAttempts(3))
					require.NoError(t, berr)
					require.NoError(t, work(tctx))
					if err = txn.Commit(tctx); !errors.Is(err, tx.ErrTransient) {
						break
					}
				}
			} else {
				err = runner.Run(ctxTimeout(t), work, tx.WithMaxAttempts(3))
			}
			require.True(t, armed, "the driver's first send was answered")
			assert.Equal(t, int64(1), e.count(t, bson.D{{Key: "_id", Value: "acct"}, {Key: "balance", Value: 10}}), "applied once: the first send committed")
			assert.Equal(t, 1, runs, "the transaction is not run again")
			if err == nil {
				assert.Equal(t, tx.Committed, outcome)
			} else {
				assert.ErrorIs(t, err, tx.ErrCommitUnknown)
				assert.Equal(t, tx.Unknown, outcome, "the outcome the hooks were told")
			}
		})
	}
}

// Every pair (first send's answer, resend's answer) keeps the invariant:
// the callback's write is applied at most once, exactly once when Run
// reports success; an unknown outcome is told to the hooks as Unknown; a
// transaction that committed is never reported as rolled back. The
// server's NoSuchTransaction on a resend is trusted (a real server
// answers a resend of a committed transaction with success), so it is
// not among the resends: a fail point that answers it lies.
func TestEveryCommitFirstAnswerAndResendAnswerAppliesAtMostOnce(t *testing.T) {
	wceFP := func(code int) bson.D {
		return bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "writeConcernError", Value: wce(code)}}
	}
	firsts := []struct {
		name  string
		give  bson.D
		times int
	}{
		{name: "WriteConcernFailed", give: wceFP(64), times: 1},
		{name: "ShutdownInProgress write concern error", give: wceFP(91), times: 2},
		{name: "MaxTimeMSExpired write concern error", give: wceFP(50), times: 1},
		{name: "write concern error 189", give: wceFP(189), times: 2},
		{name: "ShutdownInProgress unknown", give: failData("commitTransaction", 91, "UnknownTransactionCommitResult"), times: 2},
		{name: "closed connection", give: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}}, times: 2},
	}
	resends := []struct {
		name string
		give bson.D // nil: success
	}{
		{name: "success"},
		{name: "write conflict", give: failData("commitTransaction", codeWriteConflict, "TransientTransactionError")},
		{name: "closed connection", give: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "closeConnection", Value: true}}},
		{name: "Interrupted", give: failData("commitTransaction", codeInterrupted)},
	}
	for _, first := range firsts {
		for _, resend := range resends {
			for _, always := range []bool{false, true} {
				name := first.name + " then " + resend.name
				if always {
					if resend.give == nil {
						continue
					}
					name += " always"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, fastBackoff)
					armed := false
					obs := observerFunc(func(ev tx.Event) {
						if ev.Kind != tx.EventRetry || !ev.CommitOnly || armed {
							return
						}
						armed = true
						if resend.give == nil {
							e.failCommand(t, 0, failData("commitTransaction", 1))
							return
						}
						times := 1
						if always {
							times = -1
						}
						e.failCommand(t, times, resend.give)
					})
					e.failCommand(t, first.times, first.give)
					var outcome tx.Outcome
					runs := 0
					err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
						runs++ //txcheck:ignore counts the attempts
						tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
						_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "acct"}},
							bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 10}}}}, options.UpdateOne().SetUpsert(true))
						return err
					}, tx.WithObserver(obs), tx.WithMaxAttempts(3))
					e.failCommand(t, 0, failData("commitTransaction", 1))
					var got struct{ Balance int }
					_ = e.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: "acct"}}).Decode(&got)
					t.Logf("runs=%d balance=%d outcome=%v err=%v%s", runs, got.Balance, outcome, err, e.mon.dump("commitTransaction", "update", "abortTransaction"))
					assert.LessOrEqual(t, got.Balance, 10, "applied at most once")
					switch {
					case err == nil:
						assert.Equal(t, 10, got.Balance, "reported committed: applied")
						assert.Equal(t, tx.Committed, outcome)
					case errors.Is(err, tx.ErrCommitUnknown):
						assert.Equal(t, tx.Unknown, outcome)
					default:
						assert.Equal(t, 0, got.Balance, "reported failed: not applied")
						assert.Equal(t, tx.RolledBack, outcome)
					}
				})
			}
		}
	}
}
