package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/app/api"
)

func TestHealthAndReadiness(t *testing.T) {
	ta := startApp(t)
	res := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/healthz", NoAuth: true})
	assert.Equal(t, "ok", res.Body["status"])
	res = ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/readyz", NoAuth: true})
	assert.Equal(t, "ready", res.Body["status"])
	assert.NotEmpty(t, res.Header.Get("X-Request-Id"), "every response carries a request id")

	res = ta.do(req{Method: "GET", Path: "/healthz", Headers: map[string]string{"X-Request-Id": "client-chosen-42"}})
	assert.Equal(t, "client-chosen-42", res.Header.Get("X-Request-Id"), "a well-formed client request id is kept")
}

func TestLedgerRoutes(t *testing.T) {
	ta := startApp(t)

	t.Run("credits create the account and return the entry", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/credits",
			Body: `{"amount":100,"reason":"welcome"}`, Key: "k-credit-1"})
		assert.Equal(t, "alice", res.Body["account"])
		assert.Equal(t, float64(100), res.Body["amount"])
		assert.Equal(t, "credit", res.Body["kind"])
		assert.Equal(t, "welcome", res.Body["reason"])
		assert.NotEmpty(t, res.Body["id"])
		assert.Equal(t, map[string]any{"account": "alice", "balance": float64(100), "held": float64(0), "available": float64(100)}, ta.balance("alice"))
	})

	t.Run("debits return a negative entry and lower the balance", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/debits",
			Body: `{"amount":30,"reason":"chat message"}`, Key: "k-debit-1"})
		assert.Equal(t, float64(-30), res.Body["amount"])
		assert.Equal(t, "debit", res.Body["kind"])
		assert.Equal(t, float64(70), ta.balance("alice")["balance"])
	})

	t.Run("a debit beyond the balance is 409 insufficient_credits and changes nothing", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/accounts/alice/debits",
			Body: `{"amount":71,"reason":"too much"}`, Key: "k-debit-2"})
		assert.Equal(t, "insufficient_credits", res.code())
		assert.Equal(t, float64(70), ta.balance("alice")["balance"])
	})

	t.Run("a transfer moves credits between accounts", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/transfers",
			Body: `{"from":"alice","to":"bob","amount":20,"reason":"gift"}`, Key: "k-transfer-1"})
		assert.Equal(t, "alice", res.Body["from"])
		assert.Equal(t, "bob", res.Body["to"])
		assert.Equal(t, float64(20), res.Body["amount"])
		assert.Equal(t, float64(50), ta.balance("alice")["balance"])
		assert.Equal(t, float64(20), ta.balance("bob")["balance"])
		res = ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/transfers",
			Body: `{"from":"bob","to":"alice","amount":21}`, Key: "k-transfer-2"})
		assert.Equal(t, "insufficient_credits", res.code())
	})

	t.Run("holds reserve, capture and release", func(t *testing.T) {
		ta := ta.on(t)
		hold := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/holds",
			Body: `{"amount":40,"ttl_seconds":60}`, Key: "k-hold-1"}).Body
		assert.Equal(t, "open", hold["status"])
		assert.Equal(t, map[string]any{"account": "alice", "balance": float64(50), "held": float64(40), "available": float64(10)}, ta.balance("alice"))
		res := ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/accounts/alice/debits",
			Body: `{"amount":11}`, Key: "k-debit-held"})
		assert.Equal(t, "insufficient_credits", res.code(), "held credits are not available")

		entry := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/holds/" + hold["id"].(string) + "/capture",
			Body: `{"amount":25}`, Key: "k-capture-1"}).Body
		assert.Equal(t, float64(-25), entry["amount"])
		assert.Equal(t, "capture", entry["kind"])
		assert.Equal(t, map[string]any{"account": "alice", "balance": float64(25), "held": float64(0), "available": float64(25)}, ta.balance("alice"))

		res = ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/holds/" + hold["id"].(string) + "/release", Key: "k-release-closed"})
		assert.Equal(t, "hold_closed", res.code())

		hold2 := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/alice/holds",
			Body: `{"amount":5,"ttl_seconds":60}`, Key: "k-hold-2"}).Body
		released := ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/holds/" + hold2["id"].(string) + "/release", Key: "k-release-2"}).Body
		assert.Equal(t, "released", released["status"])
		assert.Equal(t, float64(25), ta.balance("alice")["available"])
	})

	t.Run("entries page through the ledger newest first", func(t *testing.T) {
		ta := ta.on(t)
		var all []any
		cursor := ""
		for range 10 {
			path := "/v1/accounts/alice/entries?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			page := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: path}).Body
			entries := page["entries"].([]any)
			assert.LessOrEqual(t, len(entries), 2)
			all = append(all, entries...)
			cursor, _ = page["next_cursor"].(string)
			if cursor == "" {
				break
			}
		}
		// credit 100, debit 30, transfer out 20, capture 25
		require.Len(t, all, 4)
		var sum float64
		for _, e := range all {
			sum += e.(map[string]any)["amount"].(float64)
		}
		assert.Equal(t, float64(25), sum, "the entries sum to the balance")
		assert.Equal(t, "capture", all[0].(map[string]any)["kind"], "newest first")
	})

	t.Run("unknown accounts, holds and payments are 404", func(t *testing.T) {
		ta := ta.on(t)
		assert.Equal(t, "account_not_found", ta.mustStatus(http.StatusNotFound, req{Method: "GET", Path: "/v1/accounts/nobody"}).code())
		assert.Equal(t, "account_not_found", ta.mustStatus(http.StatusNotFound, req{Method: "POST", Path: "/v1/accounts/nobody/debits", Body: `{"amount":1}`, Key: "k-nobody"}).code())
		assert.Equal(t, "hold_not_found", ta.mustStatus(http.StatusNotFound, req{Method: "POST", Path: "/v1/holds/000000000000000000000000/capture", Body: `{"amount":1}`, Key: "k-nohold"}).code())
		assert.Equal(t, "payment_not_found", ta.mustStatus(http.StatusNotFound, req{Method: "GET", Path: "/v1/payments/000000000000000000000000"}).code())
	})

	t.Run("reconcile reports a consistent ledger", func(t *testing.T) {
		ta := ta.on(t)
		rep := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/reconcile"}).Body
		assert.Equal(t, true, rep["ok"])
		assert.Empty(t, rep["mismatches"])
		assert.Equal(t, float64(2), rep["accounts"])
	})
}

func TestIdempotencyKeys(t *testing.T) {
	ta := startApp(t)
	ta.credit("carol", 100)

	debit := req{Method: "POST", Path: "/v1/accounts/carol/debits", Body: `{"amount":10,"reason":"msg"}`, Key: "msg-1"}
	first := ta.mustStatus(http.StatusCreated, debit)
	assert.Empty(t, first.Header.Get(api.HeaderReplayed))

	t.Run("a repeat replays the identical response and moves nothing", func(t *testing.T) {
		ta := ta.on(t)
		again := debit
		again.Body = `{ "reason": "msg", "amount": 10 }` // same request, other formatting
		second := ta.mustStatus(http.StatusCreated, again)
		assert.Equal(t, string(first.Raw), string(second.Raw))
		assert.Equal(t, "true", second.Header.Get(api.HeaderReplayed))
		assert.Equal(t, float64(90), ta.balance("carol")["balance"])
	})

	t.Run("the same key with another body is 409 idempotency_conflict", func(t *testing.T) {
		ta := ta.on(t)
		other := debit
		other.Body = `{"amount":11,"reason":"msg"}`
		assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
		other = debit
		other.Path = "/v1/accounts/dave/debits"
		assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, other).code())
		assert.Equal(t, float64(90), ta.balance("carol")["balance"])
	})

	t.Run("the same key on another route is another request, and the ledger refuses the reuse", func(t *testing.T) {
		ta := ta.on(t)
		credit := req{Method: "POST", Path: "/v1/accounts/carol/credits", Body: `{"amount":10,"reason":"msg"}`, Key: "msg-1"}
		assert.Equal(t, "idempotency_conflict", ta.mustStatus(http.StatusConflict, credit).code())
	})

	t.Run("a failed request stores nothing and may be retried with its key", func(t *testing.T) {
		ta := ta.on(t)
		big := req{Method: "POST", Path: "/v1/accounts/carol/debits", Body: `{"amount":1000}`, Key: "big-1"}
		ta.mustStatus(http.StatusConflict, big)
		ta.credit("carol", 910)
		ta.mustStatus(http.StatusCreated, big)
		assert.Equal(t, float64(0), ta.balance("carol")["balance"])
	})

	t.Run("concurrent repeats of one key apply once", func(t *testing.T) {
		ta := ta.on(t)
		ta.credit("erin", 50)
		var wg sync.WaitGroup
		bodies := make([]string, 8)
		for i := range bodies {
			wg.Go(func() {
				res := ta.do(req{Method: "POST", Path: "/v1/accounts/erin/debits", Body: `{"amount":7}`, Key: "same-key"})
				if assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Raw) {
					bodies[i] = string(res.Raw)
				}
			})
		}
		wg.Wait()
		for _, b := range bodies {
			assert.Equal(t, bodies[0], b, "every repeat gets the same entry")
		}
		assert.Equal(t, float64(43), ta.balance("erin")["balance"])
	})
}

func TestConcurrentDebitsThroughHTTP(t *testing.T) {
	ta := startApp(t)
	const (
		start   = 100
		workers = 40
		amount  = 3
	)
	ta.credit("racer", start)

	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			res := ta.do(req{Method: "POST", Path: "/v1/accounts/racer/debits", Body: fmt.Sprintf(`{"amount":%d}`, amount), Key: fmt.Sprintf("race-%d", i)})
			mu.Lock()
			codes[res.Status]++
			mu.Unlock()
			if res.Status != http.StatusCreated {
				assert.Equal(t, "insufficient_credits", res.code(), "%s", res.Raw)
			}
		})
	}
	wg.Wait()

	wantOK := start / amount // 33
	assert.Equal(t, map[int]int{http.StatusCreated: wantOK, http.StatusConflict: workers - wantOK}, codes)
	assert.Equal(t, map[string]any{"account": "racer", "balance": float64(start - wantOK*amount), "held": float64(0), "available": float64(start - wantOK*amount)}, ta.balance("racer"))
	rep := ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/reconcile"}).Body
	assert.Equal(t, true, rep["ok"], "%v", rep)
}

func TestPaymentsRoutes(t *testing.T) {
	ta := startApp(t)
	create := func(ref string) map[string]any {
		return ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-" + ref,
			Body: `{"account":"frank","amount_minor":499,"currency":"USD","credits":500,"provider":"stripe","provider_ref":"` + ref + `"}`}).Body
	}

	p := create("pi_1")
	assert.Equal(t, "pending", p["status"])
	assert.Equal(t, float64(500), p["credits"])
	id := p["id"].(string)
	assert.Equal(t, p, ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/payments/" + id}).Body)

	res := ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/payments", Key: "pay-other",
		Body: `{"account":"frank","amount_minor":499,"currency":"USD","credits":500,"provider":"stripe","provider_ref":"pi_1"}`})
	assert.Equal(t, "duplicate_provider_ref", res.code())

	done := ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/payments/" + id + "/complete", Key: "complete-1"}).Body
	assert.Equal(t, "completed", done["status"])
	assert.Equal(t, float64(500), ta.balance("frank")["balance"])

	again := ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/payments/" + id + "/complete", Key: "complete-1"})
	assert.Equal(t, "true", again.Header.Get(api.HeaderReplayed))
	// Completing a completed payment is harmless: the module returns it unchanged.
	assert.Equal(t, "completed", ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/payments/" + id + "/complete", Key: "complete-2"}).Body["status"])
	assert.Equal(t, float64(500), ta.balance("frank")["balance"], "completed once")

	refunded := ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/payments/" + id + "/refund", Key: "refund-1"}).Body
	assert.Equal(t, "refunded", refunded["status"])
	assert.Equal(t, float64(0), ta.balance("frank")["balance"])
	assert.Equal(t, "invalid_transition", ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/payments/" + id + "/complete", Key: "complete-3"}).code(),
		"a refunded payment cannot be completed again")
	assert.Equal(t, float64(0), ta.balance("frank")["balance"])

	p2 := create("pi_2")
	assert.Equal(t, "invalid_transition", ta.mustStatus(http.StatusConflict, req{Method: "POST", Path: "/v1/payments/" + p2["id"].(string) + "/refund", Key: "refund-3"}).code(),
		"a pending payment cannot be refunded")
}

func TestPaymentWebhooks(t *testing.T) {
	ta := startApp(t)
	p := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-w1",
		Body: `{"account":"gina","amount_minor":999,"currency":"EUR","credits":1000,"provider":"stripe","provider_ref":"pi_w1"}`}).Body
	event := `{"id":"evt_1","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_w1"}`

	t.Run("a signed event completes the payment", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.send(ta.signedWebhook(event, testSecret, time.Now()))
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
		assert.Equal(t, "processed", res.Body["status"])
		assert.Equal(t, "completed", ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/payments/" + p["id"].(string)}).Body["status"])
		assert.Equal(t, float64(1000), ta.balance("gina")["balance"])
	})

	t.Run("a redelivery answers 200 and changes nothing", func(t *testing.T) {
		ta := ta.on(t)
		for range 3 {
			res := ta.send(ta.signedWebhook(event, testSecret, time.Now()))
			require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
			assert.Equal(t, "duplicate", res.Body["status"])
		}
		assert.Equal(t, float64(1000), ta.balance("gina")["balance"])
	})

	t.Run("another event for a settled payment is ignored", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.send(ta.signedWebhook(`{"id":"evt_2","type":"payment.failed","provider":"stripe","provider_ref":"pi_w1","reason":"card declined"}`, testSecret, time.Now()))
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
		assert.Equal(t, "ignored", res.Body["status"])
		assert.Equal(t, float64(1000), ta.balance("gina")["balance"])
	})

	t.Run("payment.failed fails a pending payment", func(t *testing.T) {
		ta := ta.on(t)
		p := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-w2",
			Body: `{"account":"gina","amount_minor":999,"currency":"EUR","credits":1000,"provider":"stripe","provider_ref":"pi_w2"}`}).Body
		res := ta.send(ta.signedWebhook(`{"id":"evt_3","type":"payment.failed","provider":"stripe","provider_ref":"pi_w2","reason":"card declined"}`, testSecret, time.Now()))
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
		assert.Equal(t, "failed", ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/payments/" + p["id"].(string)}).Body["status"])
		assert.Equal(t, float64(1000), ta.balance("gina")["balance"])
	})

	t.Run("concurrent deliveries of one event apply once", func(t *testing.T) {
		ta := ta.on(t)
		ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-w3",
			Body: `{"account":"hank","amount_minor":100,"currency":"EUR","credits":70,"provider":"stripe","provider_ref":"pi_w3"}`})
		ev := `{"id":"evt_4","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_w3"}`
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				res := ta.send(ta.signedWebhook(ev, testSecret, time.Now()))
				assert.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
			})
		}
		wg.Wait()
		assert.Equal(t, float64(70), ta.balance("hank")["balance"])
	})

	t.Run("an event for an unknown payment is 404, so the provider retries", func(t *testing.T) {
		ta := ta.on(t)
		res := ta.send(ta.signedWebhook(`{"id":"evt_5","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_unknown"}`, testSecret, time.Now()))
		assert.Equal(t, http.StatusNotFound, res.Status)
		assert.Equal(t, "payment_not_found", res.code())
	})
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	ta := startApp(t)
	res := ta.mustStatus(http.StatusNotFound, req{Method: "GET", Path: "/v2/nothing"})
	assert.Equal(t, "not_found", res.code())
	res = ta.mustStatus(http.StatusMethodNotAllowed, req{Method: "DELETE", Path: "/v1/accounts/alice"})
	assert.Equal(t, "method_not_allowed", res.code())
	assert.Contains(t, res.Header.Get("Allow"), "GET")
}
