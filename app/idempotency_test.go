package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/app/api"
	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/mongotest"
)

// entriesWithKey counts the ledger entries written under an HTTP key:
// copied out to credit_entries or still embedded in their account.
func (ta *testApp) entriesWithKey(key string) int {
	ta.t.Helper()
	return ta.count("credit_entries", bson.D{{Key: "key", Value: "http:" + key}}) +
		ta.pendingWhere(func(e pendingEntry) bool { return e.Key == "http:"+key })
}

// pendingEntry is what the tests read of an entry still embedded in its
// account.
type pendingEntry struct {
	Key   string `bson:"key"`
	RefID string `bson:"refId"`
}

// pendingWhere counts the entries still embedded in accounts that match.
func (ta *testApp) pendingWhere(match func(pendingEntry) bool) int {
	ta.t.Helper()
	cur, err := ta.db.Collection("credit_accounts").Find(context.Background(), bson.D{})
	require.NoError(ta.t, err)
	var accs []struct {
		Pending []pendingEntry `bson:"pending"`
	}
	require.NoError(ta.t, cur.All(context.Background(), &accs))
	n := 0
	for _, a := range accs {
		for _, e := range a.Pending {
			if match(e) {
				n++
			}
		}
	}
	return n
}

func (ta *testApp) count(coll string, filter bson.D) int {
	ta.t.Helper()
	n, err := ta.db.Collection(coll).CountDocuments(context.Background(), filter)
	require.NoError(ta.t, err)
	return int(n)
}

// sendConcurrently sends r from many goroutines at once, then once more,
// and requires every 2xx to carry the same body, at most one of them
// (the final repeat included) not replayed, and every other answer to be
// a 503 of the fault (outcome_unknown, or database_unavailable: not
// sent), which the final repeat resolves. The callers check the database
// holds one effect.
func (ta *testApp) sendConcurrently(r req, wantStatus int) response {
	ta.t.Helper()
	const workers = 12
	res := make([]response, workers)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() { res[i] = ta.do(r) })
	}
	wg.Wait()
	last := ta.mustStatus(wantStatus, r)
	// The repeat is replayed when one of the others applied; when every
	// other was a 503 of a fault that applied nothing (a shared claim
	// insert failing for all of them), the repeat is the one that applies.
	applied := 0
	if last.Header.Get(api.HeaderReplayed) != "true" {
		applied++
	}
	for _, got := range res {
		if got.Status == http.StatusServiceUnavailable {
			// The fault: applied or not (the final repeat tells), or not
			// sent at all.
			assert.Contains(ta.t, []string{"outcome_unknown", "database_unavailable"}, got.code(), "%s", got.Raw)
			continue
		}
		if !assert.Equal(ta.t, wantStatus, got.Status, "%s", got.Raw) {
			continue
		}
		assert.JSONEq(ta.t, string(last.Raw), string(got.Raw), "every answer is the first one")
		if got.Header.Get(api.HeaderReplayed) != "true" {
			applied++
		}
	}
	assert.LessOrEqual(ta.t, applied, 1, "answers that say they applied, the repeat included")
	return last
}

// Every money-moving route is exactly-once per Idempotency-Key, under
// concurrent repeats and with the commit (or the write) failing: the
// database holds one effect per key, every success answers the same, and
// the key reused for another request is 409 idempotency_conflict that
// changes nothing.
func TestEveryMoneyRouteIsExactlyOncePerKey(t *testing.T) {
	faults := []struct {
		name string
		give bson.D // failCommand data; nil: no fault
	}{
		{name: "without faults"},
		{name: "with a closed connection", give: bson.D{{Key: "closeConnection", Value: true}}},
		{name: "with a write concern error", give: bson.D{{Key: "writeConcernError", Value: bson.D{
			{Key: "code", Value: int32(64)}, {Key: "codeName", Value: "WriteConcernFailed"}, {Key: "errmsg", Value: "injected"},
		}}}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			if f.give != nil && testenv.Real() {
				t.Skip("failCommand with appName needs a test server") // the fail point must hit the app's client only
			}
			ta := startApp(t)
			ta.credit("alice", 1000)
			fail := func(commands ...string) {
				if f.give == nil {
					return
				}
				cmds := bson.A{}
				for _, c := range commands {
					cmds = append(cmds, c)
				}
				testenv.FailCommand(t, ta.client, bson.D{
					{Key: "configureFailPoint", Value: "failCommand"},
					{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
					{Key: "data", Value: append(bson.D{{Key: "failCommands", Value: cmds}, {Key: "appName", Value: "txkit"}}, f.give...)},
				})
			}

			t.Run("debits", func(t *testing.T) {
				ta := ta.on(t)
				fail("update", "commitTransaction")
				r := req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "debit-k"}
				ta.sendConcurrently(r, http.StatusCreated)
				assert.Equal(t, 1, ta.entriesWithKey("debit-k"))
				r.Body = `{"amount":11}`
				assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, r).code())
				assert.Equal(t, 1, ta.entriesWithKey("debit-k"))
			})
			t.Run("credits", func(t *testing.T) {
				ta := ta.on(t)
				fail("update", "commitTransaction")
				r := req{Method: "POST", Path: "/v1/accounts/bob/credits", Body: `{"amount":10}`, Key: "credit-k"}
				ta.sendConcurrently(r, http.StatusCreated)
				assert.Equal(t, 1, ta.entriesWithKey("credit-k"))
			})
			t.Run("transfers", func(t *testing.T) {
				ta := ta.on(t)
				fail("commitTransaction")
				r := req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"carol","amount":25}`, Key: "transfer-k"}
				ta.sendConcurrently(r, http.StatusCreated)
				assert.Equal(t, 2, ta.entriesWithKey("transfer-k"), "one transfer: two sides")
				r.Body = `{"from":"alice","to":"carol","amount":26}`
				assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, r).code())
				assert.Equal(t, 2, ta.entriesWithKey("transfer-k"))
			})
			var holdID string
			t.Run("holds", func(t *testing.T) {
				ta := ta.on(t)
				fail("commitTransaction")
				r := req{Method: "POST", Path: "/v1/accounts/alice/holds", Body: `{"amount":40,"ttl_seconds":600}`, Key: "hold-k"}
				holdID, _ = ta.sendConcurrently(r, http.StatusCreated).Body["id"].(string)
				assert.Equal(t, 1, ta.count("credit_holds", bson.D{{Key: "key", Value: "http:hold-k"}}))
			})
			t.Run("captures", func(t *testing.T) {
				ta := ta.on(t)
				require.NotEmpty(t, holdID)
				fail("commitTransaction")
				r := req{Method: "POST", Path: "/v1/holds/" + holdID + "/capture", Body: `{"amount":15}`, Key: "capture-k"}
				ta.sendConcurrently(r, http.StatusCreated)
				assert.Equal(t, 1, ta.entriesWithKey("capture-k"))
				// The same key for another request on another route.
				other := req{Method: "POST", Path: "/v1/accounts/alice/holds", Body: `{"amount":40,"ttl_seconds":600}`, Key: "capture-k"}
				assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
				assert.Equal(t, 1, ta.count("credit_holds", bson.D{{Key: "account", Value: "alice"}}))
			})
			t.Run("releases", func(t *testing.T) {
				ta := ta.on(t)
				hold := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/holds", Body: `{"amount":5,"ttl_seconds":600}`, Key: "hold-2"}).Body
				fail("commitTransaction")
				r := req{Method: "POST", Path: "/v1/holds/" + hold["id"].(string) + "/release", Key: "release-k"}
				assert.Equal(t, "released", ta.sendConcurrently(r, http.StatusOK).Body["status"])
				other := req{Method: "POST", Path: "/v1/holds/" + holdID + "/release", Key: "release-k"}
				assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
				assert.Equal(t, 1, ta.count("credit_holds", bson.D{{Key: "status", Value: "released"}}), "the other hold was not released")
			})
			var paymentID string
			t.Run("payments", func(t *testing.T) {
				ta := ta.on(t)
				fail("commitTransaction")
				r := req{Method: "POST", Path: "/v1/payments", Key: "payment-k",
					Body: `{"account":"dave","amount_minor":499,"currency":"USD","credits":500,"provider":"stripe","provider_ref":"pi_once"}`}
				paymentID, _ = ta.sendConcurrently(r, http.StatusCreated).Body["id"].(string)
				assert.Equal(t, 1, ta.count("payments", bson.D{{Key: "providerRef", Value: "pi_once"}}))
				r.Body = `{"account":"dave","amount_minor":499,"currency":"USD","credits":500,"provider":"stripe","provider_ref":"pi_other"}`
				assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, r).code())
				assert.Equal(t, 0, ta.count("payments", bson.D{{Key: "providerRef", Value: "pi_other"}}))
			})
			t.Run("completions and refunds", func(t *testing.T) {
				ta := ta.on(t)
				require.NotEmpty(t, paymentID)
				fail("commitTransaction")
				done := ta.sendConcurrently(req{Method: "POST", Path: "/v1/payments/" + paymentID + "/complete", Key: "complete-k"}, http.StatusOK)
				assert.Equal(t, "completed", done.Body["status"])
				assert.Equal(t, float64(500), ta.balance("dave")["balance"])
				fail("commitTransaction")
				done = ta.sendConcurrently(req{Method: "POST", Path: "/v1/payments/" + paymentID + "/refund", Key: "refund-k"}, http.StatusOK)
				assert.Equal(t, "refunded", done.Body["status"])
				assert.Equal(t, float64(0), ta.balance("dave")["balance"])
				assert.Equal(t, 2, ta.count("credit_entries", bson.D{{Key: "refId", Value: paymentID}})+ta.pendingWhere(func(e pendingEntry) bool { return e.RefID == paymentID }))
			})
			rep := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/reconcile"}).Body
			assert.Equal(t, true, rep["ok"], "%v", rep)
		})
	}
}

// A response stored by the version before internal/idempotency (keyed by
// route and key, with the request's hash) is still replayed, and its key
// still refuses another request, until it expires.
func TestResponsesStoredBeforeTheUpgradeAreReplayed(t *testing.T) {
	ta := startApp(t)
	body := `{"account":"gina","amount_minor":100,"currency":"EUR","credits":10,"provider":"stripe","provider_ref":"pi_old"}`
	// The old requestHash: path, a zero byte, the decoded request re-encoded.
	h := sha256.New()
	h.Write([]byte("/v1/payments\x00"))
	h.Write([]byte(body))
	stored := `{"id":"old-payment","status":"pending"}`
	_, err := ta.db.Collection("http_idempotency").InsertOne(context.Background(), bson.D{
		{Key: "_id", Value: "POST /v1/payments|old-key"}, {Key: "route", Value: "POST /v1/payments"}, {Key: "key", Value: "old-key"},
		{Key: "request_hash", Value: hex.EncodeToString(h.Sum(nil))}, {Key: "status", Value: 201},
		{Key: "content_type", Value: "application/json"}, {Key: "body", Value: []byte(stored)}, {Key: "created_at", Value: time.Now()},
	})
	require.NoError(t, err)

	res := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "old-key", Body: body})
	assert.JSONEq(t, stored, string(res.Raw))
	assert.Equal(t, "true", res.Header.Get(api.HeaderReplayed))
	other := req{Method: "POST", Path: "/v1/payments", Key: "old-key", Body: strings.Replace(body, "pi_old", "pi_new", 1)}
	assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
	assert.Equal(t, 0, ta.count("payments", bson.D{}), "nothing created")
}

// One key names one request whatever the route: a key first used on a
// ledger route and then on a release or payment route (or the reverse) is
// idempotency_conflict and the second request changes nothing.
func TestAKeyIsOneRequestAcrossLedgerAndPaymentRoutes(t *testing.T) {
	ta := startApp(t)
	ta.credit("alice", 1000)

	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "shared-1"})
	pay := req{Method: "POST", Path: "/v1/payments", Key: "shared-1",
		Body: `{"account":"alice","amount_minor":100,"currency":"USD","credits":100,"provider":"stripe","provider_ref":"pi_shared"}`}
	assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, pay).code())
	assert.Equal(t, 0, ta.count("payments", bson.D{{Key: "providerRef", Value: "pi_shared"}}), "no payment created")

	pay.Key = "shared-2"
	ta.mustStatus(http.StatusCreated, pay)
	debit := req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "shared-2"}
	assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, debit).code())
	transfer := req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":5}`, Key: "shared-2"}
	assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, transfer).code())
	assert.Equal(t, 0, ta.entriesWithKey("shared-2"), "no ledger entry under the payment's key")
	assert.Equal(t, float64(990), ta.balance("alice")["balance"])
}

// Concurrent first uses of one key on a ledger route and a payment route:
// exactly one request applies, the others are idempotency_conflict (or a
// 503 that applied nothing).
func TestConcurrentFirstUsesOfAKeyAcrossRoutesApplyOne(t *testing.T) {
	ta := startApp(t)
	ta.credit("alice", 1000)
	for round := range 8 {
		key := "x-" + randomHex(6)
		reqs := []req{
			{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: key},
			{Method: "POST", Path: "/v1/payments", Key: key, Body: `{"account":"alice","amount_minor":100,"currency":"USD","credits":100,"provider":"stripe","provider_ref":"pi_` + key + `"}`},
			{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":5}`, Key: key},
			{Method: "POST", Path: "/v1/accounts/alice/credits", Body: `{"amount":7}`, Key: key},
		}
		res := make([]response, len(reqs)*3)
		var wg sync.WaitGroup
		for i := range res {
			wg.Go(func() { res[i] = ta.do(reqs[i%len(reqs)]) })
		}
		wg.Wait()
		won := map[string]bool{}
		for i, r := range res {
			if r.Status == http.StatusCreated {
				won[reqs[i%len(reqs)].Path] = true
			} else {
				assert.Contains(t, []int{http.StatusConflict, http.StatusServiceUnavailable}, r.Status, "round %d %s: %s", round, reqs[i%len(reqs)].Path, r.Raw)
			}
		}
		assert.Len(t, won, 1, "round %d: routes that applied under one key: %v", round, won)
		payments := ta.count("payments", bson.D{{Key: "providerRef", Value: "pi_" + key}})
		entries := ta.entriesWithKey(key)
		assert.Equal(t, 1, payments+entries-map[bool]int{true: 1, false: 0}[won["/v1/transfers"]], "round %d: effects under one key (payments %d, entries %d)", round, payments, entries)
	}
}

// A key that the version before the shared key space recorded in
// http_idempotency (same record format, key "http:<key>") is still
// replayed, and still refuses another request, until it expires.
func TestKeysRecordedInTheOldCollectionAreReplayed(t *testing.T) {
	ta := startApp(t)
	ctx := context.Background()
	body := `{"account":"hana","amount_minor":100,"currency":"EUR","credits":10,"provider":"stripe","provider_ref":"pi_moved"}`
	first := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "moved", Body: body})
	// Move the record where the earlier version kept it.
	var rec bson.Raw
	require.NoError(t, ta.db.Collection("credit_idempotency").FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: "http:moved"}}).Decode(&rec))
	_, err := ta.db.Collection("http_idempotency").InsertOne(ctx, rec)
	require.NoError(t, err)

	again := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "moved", Body: body})
	assert.JSONEq(t, string(first.Raw), string(again.Raw))
	assert.Equal(t, "true", again.Header.Get(api.HeaderReplayed))
	other := req{Method: "POST", Path: "/v1/payments", Key: "moved", Body: strings.Replace(body, "pi_moved", "pi_other", 1)}
	assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
	assert.Equal(t, 1, ta.count("payments", bson.D{}), "one payment")
}

// A key that the version before the shared key space recorded in
// http_idempotency for a payment still names that request after the
// upgrade (restart): a debit, credit or transfer under it is
// idempotency_conflict and moves no money (attack13b finding
// app-legacy-key-not-checked-by-ledger-routes).
func TestAKeyRecordedInTheOldCollectionRefusesLedgerRoutes(t *testing.T) {
	uri := os.Getenv(testenv.EnvURI)
	if uri == "" {
		uri = mongotest.Start(t).URI()
	}
	db := "txkit_e2e_" + randomHex(6)
	ctx := context.Background()
	before := startApp(t, func(c *Config) { c.MongoURI, c.DB = uri, db })
	before.credit("alice", 1000)
	body := `{"account":"alice","amount_minor":100,"currency":"EUR","credits":10,"provider":"stripe","provider_ref":"pi_old"}`
	before.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "old-1", Body: body})
	// Move the record where the earlier version kept it, then restart.
	var rec bson.Raw
	require.NoError(t, before.db.Collection("credit_idempotency").FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: "http:old-1"}}).Decode(&rec))
	_, err := before.db.Collection("http_idempotency").InsertOne(ctx, rec)
	require.NoError(t, err)
	before.app.RequireStop()
	ta := startApp(t, func(c *Config) { c.MongoURI, c.DB = uri, db })

	for _, r := range []req{
		{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "old-1"},
		{Method: "POST", Path: "/v1/accounts/alice/credits", Body: `{"amount":10}`, Key: "old-1"},
		{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":5}`, Key: "old-1"},
	} {
		got := ta.do(r)
		assert.Equal(t, http.StatusConflict, got.Status, "%s %s: %s", r.Method, r.Path, got.Raw)
		assert.Equal(t, "idempotency_conflict", got.code(), "%s", got.Raw)
	}
	assert.Equal(t, 0, ta.entriesWithKey("old-1"), "ledger entries under the payment's key")
	assert.Equal(t, float64(1000), ta.balance("alice")["balance"])
	// A new key is not refused.
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/debits", Body: `{"amount":10}`, Key: "new-1"})
}

// A transaction whose read the server ends with MaxTimeMSExpired was
// aborted: nothing was applied, so the answer is database_unavailable
// (retry), never outcome_unknown (finding
// app-read-maxtimems-in-transaction-answered-outcome-unknown).
func TestATimedOutReadInATransactionIsNotAnUnknownOutcome(t *testing.T) {
	if testenv.Real() {
		t.Skip("failCommand with appName needs a test server")
	}
	ta := startApp(t)
	ta.credit("alice", 1000)
	testenv.FailCommand(t, ta.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"},
		{Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "appName", Value: "txkit"},
			{Key: "errorCode", Value: int32(50)}}},
	})
	r := ta.do(req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"alice","to":"bob","amount":5}`, Key: "t-maxtime"})
	assert.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Raw)
	assert.Equal(t, "database_unavailable", r.code(), "%s", r.Raw)
	assert.Equal(t, 0, ta.entriesWithKey("t-maxtime"))
	assert.Equal(t, float64(1000), ta.balance("alice")["balance"])
}
