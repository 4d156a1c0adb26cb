package tx_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tx"
)

// Goroutines share a transaction's ctx (docs/transactions.md,
// Concurrency: "none of this is a data race under go test -race"): some
// join it, some start a transaction of their own (RequiresNew) from it.
// A scope starting from that ctx must not read the state of the
// transaction's session (ctx's session) while a joined scope's statement
// changes it (attack23, finding tx-requiresnew-reads-shared-session-state).
func TestAttack23RequiresNewFromASharedTransactionCtxIsNoDataRace(t *testing.T) {
	e := newEnv(t, fastBackoff)
	for round := 0; round < 20; round++ {
		err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() { //txcheck:ignore scopes entered from goroutines sharing the ctx are serialised by txkit (docs/transactions.md, Concurrency): what this test checks
					defer wg.Done()
					prop := tx.Required
					if g%2 == 1 {
						prop = tx.RequiresNew
					}
					assert.NoError(t, e.runner.Run(ctx, func(ctx context.Context) error {
						_, err := e.coll.InsertOne(ctx, doc(fmt.Sprintf("%d-%d", round, g)))
						return err
					}, tx.WithPropagation(prop)))
				}()
			}
			wg.Wait()
			return nil
		})
		require.NoError(t, err)
	}
	assert.EqualValues(t, 80, e.count(t, nil))
}
