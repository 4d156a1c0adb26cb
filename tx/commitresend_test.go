package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/tx"
)

// codeInterrupted is what killSessions and killOp answer a command they
// interrupt: MongoDB labels it neither TransientTransactionError nor
// UnknownTransactionCommitResult.
const codeInterrupted = 11601

// Once a send of the commit may have applied (its reply carried a write
// concern error), a later send's answer that says nothing about the
// transaction (Interrupted: a kill came, or an operator's killOp) does
// not make it "nothing was applied": the commit is sent again until a send
// learns the outcome, or the outcome stays unknown (finding
// tx-rekill-resent-commit-reported-rolled-back).
func TestAResentCommitAnsweredWithoutALabelIsNotReportedAsNothingApplied(t *testing.T) {
	checkResentCommit(t, failData("commitTransaction", codeInterrupted))
}

// A send of the commit refused before it ran (TransientTransactionError:
// a fail point, or the driver's own label for a send it could not make)
// says nothing about an earlier send, which may have applied: the
// transaction must not be run again (it would apply twice), and its
// outcome is learned by sending the commit again, or stays unknown
// (finding tx-attack24-chaos-453-dup-hold: a Reserve's second attempt
// inserted its hold again and failed on E11000; the first had committed).
func TestAResentCommitRefusedAsTransientDoesNotRunTheTransactionAgain(t *testing.T) {
	checkResentCommit(t, failData("commitTransaction", 112, "TransientTransactionError"))
}

// checkResentCommit commits a transaction whose first send of the commit
// applies with a write concern error, and whose later sends get resend
// (once, then every time): its write must be applied exactly once, and
// Run must report it committed once a send learns it, else unknown, with
// the hooks told the same.
func checkResentCommit(t *testing.T, resend bson.D) {
	tests := []struct {
		name        string
		give        int // sends after the first answered resend; < 0: all
		wantErr     error
		wantOutcome tx.Outcome
	}{
		{name: "a later send learns that it committed", give: 1, wantOutcome: tx.Committed},
		{name: "no send learns it: the outcome stays unknown", give: -1, wantErr: tx.ErrCommitUnknown, wantOutcome: tx.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, fastBackoff)
			armed := false
			obs := observerFunc(func(ev tx.Event) {
				if ev.Kind != tx.EventRetry || !ev.CommitOnly || armed {
					return
				}
				armed = true
				e.failCommand(t, tt.give, resend)
			})
			// The first send applies; its reply has a write concern error.
			e.failCommand(t, 1, bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "writeConcernError", Value: wce(codeWriteConcernFailed)},
			})
			var outcome tx.Outcome
			err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
				_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "acct"}},
					bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 10}}}}, options.UpdateOne().SetUpsert(true))
				return err
			}, tx.WithObserver(obs), tx.WithMaxAttempts(3))
			require.True(t, armed, "the commit was sent again")
			assert.Equal(t, int64(1), e.count(t, bson.D{{Key: "_id", Value: "acct"}, {Key: "balance", Value: 10}}),
				"applied once: the first send committed, and nothing ran again")
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			assert.Equal(t, tt.wantOutcome, outcome, "the outcome the hooks were told")
		})
	}
}
