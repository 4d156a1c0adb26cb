package payments_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
	"github.com/txkit/txkit/tx"
)

func unknownOutcome(err error) bool {
	return errors.Is(err, payments.ErrOutcomeUnknown) || errors.Is(err, tx.ErrCommitUnknown) || errors.Is(err, credits.ErrOutcomeUnknown)
}

// Creates and completions whose contexts end at random points, with
// statements and commits held by the database: each reports what
// happened (success: stored; failure: not stored; or unknown).
func TestCutPaymentCallsReportWhatHappened(t *testing.T) {
	if testenv.Real() {
		t.Skip("fail points")
	}
	e := newEnv(t)
	const n = 40
	block := func(cmds ...string) {
		a := bson.A{}
		for _, c := range cmds {
			a = append(a, c)
		}
		testenv.FailCommand(t, e.db.Client(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 15}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: a}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 40}}}})
	}
	cut := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Duration(5+rand.IntN(120))*time.Millisecond)
	}
	type created struct {
		ref string
		p   payments.Payment
		err error
	}
	res := make([]created, n)
	block("insert", "commitTransaction")
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			ctx, cancel := cut()
			defer cancel()
			ref := fmt.Sprintf("pi_cut_%d", i)
			p, err := e.payments.Create(ctx, payments.NewPayment{Account: "acct", AmountMinor: 100, Currency: "EUR", Credits: 10, Provider: "stripe", ProviderRef: ref})
			res[i] = created{ref, p, err}
		})
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	var ids []string
	for _, r := range res {
		cnt, err := e.db.Collection("payments").CountDocuments(context.Background(), bson.D{{Key: "providerRef", Value: r.ref}})
		require.NoError(t, err)
		switch {
		case r.err == nil:
			assert.EqualValues(t, 1, cnt, "%s: created reported, not stored", r.ref)
			ids = append(ids, r.p.ID)
		case unknownOutcome(r.err):
		default:
			assert.Zero(t, cnt, "%s: failure reported (%v), stored", r.ref, r.err)
		}
	}
	// Completions, each called twice at once, with cut contexts.
	block("update", "insert", "findAndModify", "commitTransaction")
	type completed struct {
		id  string
		err error
	}
	var mu sync.Mutex
	var comps []completed
	for _, id := range ids {
		for range 2 {
			wg.Go(func() {
				ctx, cancel := cut()
				defer cancel()
				_, err := e.payments.Complete(ctx, id)
				mu.Lock()
				comps = append(comps, completed{id, err})
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	done := map[string]bool{}
	for _, id := range ids {
		var p struct{ Status string }
		require.NoError(t, e.db.Collection("payments").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&p))
		done[id] = p.Status == string(payments.StatusCompleted)
	}
	for _, c := range comps {
		switch {
		case c.err == nil:
			assert.True(t, done[c.id], "%s: completion reported, not stored", c.id)
		case unknownOutcome(c.err):
		default:
			if done[c.id] {
				// The other call may have completed it.
				continue
			}
		}
	}
	nDone := 0
	for _, d := range done {
		if d {
			nDone++
		}
	}
	b, err := e.credits.Balance(context.Background(), "acct")
	if nDone > 0 {
		require.NoError(t, err)
		assert.EqualValues(t, 10*nDone, b.Balance, "credited once per completed payment")
	}
	t.Logf("created %d of %d, completed %d", len(ids), n, nDone)
}
