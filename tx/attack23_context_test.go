package tx_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/tx"
)

// InTransaction "reports whether collection calls made with ctx are part
// of a running transaction". Inside a txkit transaction, a ctx carrying a
// driver session of the same client that runs no transaction (the caller
// put one there, e.g. for causal consistency) makes collection calls on
// that session, outside the transaction: InTransaction must not say they
// are in it, or a caller that writes with ctx because it is "in a
// transaction" has the write survive the transaction's abort (attack23,
// finding tx-intransaction-idle-driver-session-inside-transaction).
func TestAttack23InTransactionIsFalseForAnIdleDriverSessionInsideATransaction(t *testing.T) {
	e := newEnv(t, fastBackoff)
	var said bool
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		sess, err := e.client.StartSession()
		if err != nil {
			return err
		}
		defer sess.EndSession(context.Background())
		sctx := mongo.NewSessionContext(ctx, sess)
		said = tx.InTransaction(sctx)
		if said {
			// "in a transaction": the write commits or vanishes with it.
			if _, err := e.coll.InsertOne(sctx, doc("written")); err != nil {
				return err
			}
		}
		return errBusiness // the transaction aborts
	})
	require.ErrorIs(t, err, errBusiness)
	if said {
		assert.Zero(t, e.count(t, nil), "InTransaction said the write was in the transaction; it survived the abort")
	}
}
