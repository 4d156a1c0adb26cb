package main

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A debit refused for insufficient credits, then repeated with
// the same Idempotency-Key after a top-up, is applied by the repeat. The
// repeat is the first success of that key: it must not say it replays an
// earlier success (docs/app.md: "A repeat of a request that succeeded gets
// the identical response … with Idempotent-Replayed: true"), and the
// ledger's history must not date the debit before the top-up that made it
// possible (the history would show the account overdrawn, which never
// happened and which the ledger promises never happens).
func TestARefusedDebitRepeatedAfterATopUpIsNotAReplay(t *testing.T) {
	ta := startApp(t)
	ta.credit("alice", 10)
	debit := req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":50,"reason":"buy"}`, Key: "buy-1"}
	assert.Equal(t, "insufficient_credits", ta.mustStatus(http.StatusConflict, debit).code())
	assert.Equal(t, float64(10), ta.balance("alice")["balance"], "nothing applied")

	time.Sleep(20 * time.Millisecond) // the top-up is visibly later
	ta.credit("alice", 100)
	res := ta.mustStatus(http.StatusCreated, debit)
	assert.Equal(t, float64(60), ta.balance("alice")["balance"], "applied now, once")
	assert.Empty(t, res.Header.Get("Idempotent-Replayed"),
		"no earlier request of this key succeeded: this response is not a replay (%s)", res.Raw)

	// The history, in its own created_at order, never goes below zero.
	page := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/accounts/alice/entries"}).Body
	raw, _ := page["entries"].([]any)
	require.Len(t, raw, 3)
	type ent struct {
		at     time.Time
		amount int64
	}
	var es []ent
	for _, r := range raw {
		m := r.(map[string]any)
		at, err := time.Parse(time.RFC3339Nano, m["created_at"].(string))
		require.NoError(t, err)
		es = append(es, ent{at: at, amount: int64(m["amount"].(float64))})
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].at.Before(es[j].at) })
	var bal int64
	for _, e := range es {
		bal += e.amount
		assert.GreaterOrEqual(t, bal, int64(0), "the history shows the account overdrawn at %s: %+v", e.at, es)
	}
}
