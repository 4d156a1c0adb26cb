package tx_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/tx"
)

// An attempt that is run again may leave its transaction open on the
// server: its commit was refused with TransientTransactionError before it
// ran (a fail point, a connection pool cleared under the send), or its
// abort did not get through. Until the finding
// chaos-hot-accounts-held-ten-seconds, only the next attempt's first
// statement, on the same session, ended it. A callback that waits for
// something before its first statement (credits' lanes wait for this
// process's single-document writers to the same accounts, which wait on
// the server for the documents the open transaction holds) then waited
// for the server's transaction lifetime limit. The next attempt must not
// find the documents of the last one held: here it first writes the
// document outside the transaction, as such a writer would.
func TestTheNextAttemptDoesNotWaitForTheTransactionTheLastOneLeftOpen(t *testing.T) {
	tests := []struct {
		name string
		give bson.D // the failCommand data
		read bool   // attempt 1 fails on a read (else it commits)
	}{
		{
			// NoSuchTransaction: the one refusal of a commit that proves
			// it did not commit, so the function is run again.
			name: "the commit is refused with TransientTransactionError before it runs",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"commitTransaction"}},
				{Key: "errorCode", Value: codeNoSuchTransaction},
				{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}},
			},
		},
		{
			name: "the connection closes under a statement and under the abort",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"distinct", "abortTransaction"}},
				{Key: "closeConnection", Value: true},
			},
			read: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithCleanupTimeout(reapCleanup))
			seedDoc(t, e)
			mode := 1
			if tt.read {
				mode = -1 // the driver resends the abort once
			}
			e.failCommand(t, mode, tt.give)

			attempts := 0
			err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				attempts++ //txcheck:ignore counts the attempts
				if attempts == 1 {
					if _, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "attempt 1"}}}}); err != nil {
						return err
					}
					if tt.read {
						return e.coll.Distinct(ctx, "v", bson.D{}).Err()
					}
					return nil
				}
				// Outside the transaction, as another writer the attempt
				// waits for, bounded far below the server's lifetime
				// limit (60 s).
				wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := e.coll.UpdateOne(wctx, //txcheck:ignore a writer outside the transaction, on purpose
					bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "w", Value: "writer"}}}}); err != nil {
					return fmt.Errorf("the writer waited for the transaction attempt 1 left open: %w", err)
				}
				_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "attempt 2"}}}})
				return err
			})
			require.NoError(t, err)
			assert.Equal(t, 2, attempts)
			var got struct{ V, W string }
			require.NoError(t, e.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&got))
			assert.Equal(t, "attempt 2", got.V)
			assert.Equal(t, "writer", got.W)
		})
	}
}
