package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/app/api"
)

// TestHostileRequests sends malformed and hostile requests: each gets its
// 4xx problem, none a 500, and none changes a balance.
func TestHostileRequests(t *testing.T) {
	ta := startApp(t)
	ta.credit("victim", 100)
	hold := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/accounts/victim/holds", Body: `{"amount":1,"ttl_seconds":600}`, Key: "hostile-hold"}).Body["id"].(string)
	ta.mustStatus(http.StatusOK, req{Method: "POST", Path: "/v1/holds/" + hold + "/release", Key: "hostile-release"})

	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "hostile-pay",
		Body: `{"account":"payee","amount_minor":100,"currency":"USD","credits":100,"provider":"stripe","provider_ref":"pi_h"}`})

	debit := func(body string) req {
		return req{Method: "POST", Path: "/v1/accounts/victim/debits", Body: body, Key: "hostile-" + randomHex(6)}
	}
	withHeaders := func(r req, h map[string]string) req { r.Headers = h; return r }
	event := `{"id":"evt_h","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_h"}`

	tests := []struct {
		name     string
		give     req
		webhook  func() *http.Request // instead of give
		wantCode int
		want     string // the problem code; for a 200, the webhook status
	}{
		{name: "no bearer token", give: req{Method: "GET", Path: "/v1/accounts/victim", NoAuth: true}, wantCode: 401, want: "unauthorized"},
		{name: "wrong bearer token", give: withHeaders(req{Method: "GET", Path: "/v1/accounts/victim"}, map[string]string{"Authorization": "Bearer " + strings.Repeat("x", len(testToken))}), wantCode: 401, want: "unauthorized"},
		{name: "token as a prefix of the real one", give: withHeaders(req{Method: "GET", Path: "/v1/accounts/victim"}, map[string]string{"Authorization": "Bearer " + testToken[:10]}), wantCode: 401, want: "unauthorized"},
		{name: "basic auth instead of bearer", give: withHeaders(req{Method: "GET", Path: "/v1/accounts/victim"}, map[string]string{"Authorization": "Basic " + testToken}), wantCode: 401, want: "unauthorized"},
		{name: "token in the query string", give: req{Method: "GET", Path: "/v1/accounts/victim?access_token=" + testToken, NoAuth: true}, wantCode: 401, want: "unauthorized"},
		{name: "operator object as account id", give: req{Method: "GET", Path: `/v1/accounts/%7B%22$gt%22:%22%22%7D`}, wantCode: 400, want: "invalid_account"},
		{name: "operator as account id", give: req{Method: "GET", Path: `/v1/accounts/$gt`}, wantCode: 400, want: "invalid_account"},
		{name: "account id of 129 characters", give: req{Method: "GET", Path: "/v1/accounts/" + strings.Repeat("a", 129)}, wantCode: 400, want: "invalid_account"},
		{name: "dotted path as account id", give: req{Method: "GET", Path: "/v1/accounts/a%2Fb"}, wantCode: 400, want: "invalid_account"},
		{name: "NUL byte in account id", give: req{Method: "GET", Path: "/v1/accounts/a%00b"}, wantCode: 400, want: "invalid_account"},
		{name: "operator object as transfer source", give: req{Method: "POST", Path: "/v1/transfers", Body: `{"from":{"$gt":""},"to":"bob","amount":1}`, Key: "h-1"}, wantCode: 400, want: "invalid_json"},
		{name: "operator string as transfer target", give: req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"victim","to":"$where","amount":1}`, Key: "h-2"}, wantCode: 400, want: "invalid_account"},
		{name: "transfer to oneself", give: req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"victim","to":"victim","amount":1}`, Key: "h-3"}, wantCode: 400, want: "invalid_account"},
		{name: "operator object as payment id", give: req{Method: "GET", Path: `/v1/payments/%7B%22$ne%22:null%7D`}, wantCode: 400, want: "invalid_id"},
		{name: "operator object as hold id", give: req{Method: "POST", Path: `/v1/holds/%7B%22$gt%22:%22%22%7D/capture`, Body: `{"amount":1}`, Key: "h-4"}, wantCode: 400, want: "invalid_id"},
		{name: "negative amount", give: debit(`{"amount":-5}`), wantCode: 400, want: "invalid_amount"},
		{name: "zero amount", give: debit(`{"amount":0}`), wantCode: 400, want: "invalid_amount"},
		{name: "missing amount", give: debit(`{"reason":"x"}`), wantCode: 400, want: "invalid_amount"},
		{name: "fractional amount", give: debit(`{"amount":1.5}`), wantCode: 400, want: "invalid_json"},
		{name: "amount in exponent form", give: debit(`{"amount":1e2}`), wantCode: 400, want: "invalid_json"},
		{name: "amount beyond int64", give: debit(`{"amount":9223372036854775808}`), wantCode: 400, want: "invalid_json"},
		{name: "amount as a string", give: debit(`{"amount":"5"}`), wantCode: 400, want: "invalid_json"},
		{name: "amount as an object", give: debit(`{"amount":{"$gt":0}}`), wantCode: 400, want: "invalid_json"},
		{name: "unknown field", give: debit(`{"amount":5,"account":"someone-else"}`), wantCode: 400, want: "invalid_json"},
		{name: "array instead of object", give: debit(`[{"amount":5}]`), wantCode: 400, want: "invalid_json"},
		{name: "field name in another case", give: debit(`{"Amount":5}`), wantCode: 400, want: "invalid_json"},
		{name: "field given twice, the second larger", give: debit(`{"amount":1,"amount":50}`), wantCode: 400, want: "invalid_json"},
		{name: "field given twice in two cases", give: debit(`{"amount":1,"AMOUNT":50}`), wantCode: 400, want: "invalid_json"},
		{name: "transfer source given twice in two cases", give: req{Method: "POST", Path: "/v1/transfers", Body: `{"from":"victim","to":"payee","amount":5,"From":"payee"}`, Key: "h-dup"}, wantCode: 400, want: "invalid_json"},
		{name: "two JSON objects", give: debit(`{"amount":5}{"amount":5}`), wantCode: 400, want: "invalid_json"},
		{name: "truncated JSON", give: debit(`{"amount":5`), wantCode: 400, want: "invalid_json"},
		{name: "not JSON at all", give: debit(`amount=5`), wantCode: 400, want: "invalid_json"},
		{name: "invalid UTF-8", give: debit("{\"amount\":5,\"reason\":\"\xff\xfe\"}"), wantCode: 400, want: "invalid_json"},
		{name: "reason over 512 bytes", give: debit(`{"amount":5,"reason":"` + strings.Repeat("r", 513) + `"}`), wantCode: 400, want: "invalid_request"},
		{name: "empty body", give: req{Method: "POST", Path: "/v1/accounts/victim/debits", Headers: map[string]string{"Content-Type": "application/json"}, Key: "h-5"}, wantCode: 400, want: "invalid_json"},
		{name: "body over 64 KiB", give: debit(`{"amount":5,"reason":"` + strings.Repeat("r", 70<<10) + `"}`), wantCode: 413, want: "body_too_large"},
		{name: "form content type", give: withHeaders(debit(`{"amount":5}`), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), wantCode: 415, want: "unsupported_media_type"},
		{name: "text content type", give: withHeaders(debit(`{"amount":5}`), map[string]string{"Content-Type": "text/plain"}), wantCode: 415, want: "unsupported_media_type"},
		{name: "no content type", give: withHeaders(debit(`{"amount":5}`), map[string]string{"Content-Type": ""}), wantCode: 415, want: "unsupported_media_type"},
		{name: "missing Idempotency-Key", give: req{Method: "POST", Path: "/v1/accounts/victim/debits", Body: `{"amount":5}`}, wantCode: 400, want: "missing_idempotency_key"},
		{name: "Idempotency-Key over 200 characters", give: req{Method: "POST", Path: "/v1/accounts/victim/debits", Body: `{"amount":5}`, Key: strings.Repeat("k", 201)}, wantCode: 400, want: "invalid_idempotency_key"},
		{name: "Idempotency-Key with spaces", give: req{Method: "POST", Path: "/v1/accounts/victim/debits", Body: `{"amount":5}`, Key: "a key"}, wantCode: 400, want: "invalid_idempotency_key"},
		{name: "hold with a TTL of zero", give: req{Method: "POST", Path: "/v1/accounts/victim/holds", Body: `{"amount":5,"ttl_seconds":0}`, Key: "h-6"}, wantCode: 400, want: "invalid_request"},
		{name: "hold with a TTL of centuries", give: req{Method: "POST", Path: "/v1/accounts/victim/holds", Body: `{"amount":5,"ttl_seconds":9223372036854775807}`, Key: "h-7"}, wantCode: 400, want: "invalid_request"},
		{name: "capture beyond the hold", give: req{Method: "POST", Path: "/v1/holds/" + hold + "/capture", Body: `{"amount":5}`, Key: "h-8"}, wantCode: 409, want: "hold_closed"},
		{name: "entries with a negative limit", give: req{Method: "GET", Path: "/v1/accounts/victim/entries?limit=-1"}, wantCode: 400, want: "invalid_request"},
		{name: "entries with a huge limit", give: req{Method: "GET", Path: "/v1/accounts/victim/entries?limit=100000000000000000000"}, wantCode: 400, want: "invalid_request"},
		{name: "entries with a forged cursor", give: req{Method: "GET", Path: "/v1/accounts/victim/entries?cursor=bm90LWEtY3Vyc29y"}, wantCode: 400, want: "invalid_request"},
		{name: "entries with an operator cursor", give: req{Method: "GET", Path: `/v1/accounts/victim/entries?cursor=%7B%22$gt%22:%22%22%7D`}, wantCode: 400, want: "invalid_request"},
		{name: "payment with a lowercase currency", give: req{Method: "POST", Path: "/v1/payments", Body: `{"account":"victim","amount_minor":1,"currency":"usd","credits":1,"provider":"stripe","provider_ref":"x"}`, Key: "h-9"}, wantCode: 400, want: "invalid_payment"},
		{name: "payment with an operator provider_ref", give: req{Method: "POST", Path: "/v1/payments", Body: `{"account":"victim","amount_minor":1,"currency":"USD","credits":1,"provider":"stripe","provider_ref":{"$gt":""}}`, Key: "h-10"}, wantCode: 400, want: "invalid_json"},
		{name: "payment with negative credits", give: req{Method: "POST", Path: "/v1/payments", Body: `{"account":"victim","amount_minor":1,"currency":"USD","credits":-100,"provider":"stripe","provider_ref":"x"}`, Key: "h-11"}, wantCode: 400, want: "invalid_amount"},
		{name: "webhook without a signature", webhook: func() *http.Request {
			r := ta.signedWebhook(event, testSecret, time.Now())
			r.Header.Del(api.HeaderSignature)
			return r
		}, wantCode: 401, want: "invalid_signature"},
		{name: "webhook signed with another secret", webhook: func() *http.Request { return ta.signedWebhook(event, "another-secret-0123456789", time.Now()) }, wantCode: 401, want: "invalid_signature"},
		{name: "webhook with a body changed after signing", webhook: func() *http.Request {
			r := ta.signedWebhook(event, testSecret, time.Now())
			forged := ta.signedWebhook(strings.Replace(event, "pi_h", "pi_x", 1), testSecret, time.Now())
			forged.Header.Set(api.HeaderSignature, r.Header.Get(api.HeaderSignature))
			return forged
		}, wantCode: 401, want: "invalid_signature"},
		{name: "webhook with a stale timestamp (replay)", webhook: func() *http.Request { return ta.signedWebhook(event, testSecret, time.Now().Add(-301*time.Second)) }, wantCode: 401, want: "stale_signature"},
		{name: "webhook from the future", webhook: func() *http.Request { return ta.signedWebhook(event, testSecret, time.Now().Add(10*time.Minute)) }, wantCode: 401, want: "stale_signature"},
		{name: "webhook with a malformed signature header", webhook: func() *http.Request {
			r := ta.signedWebhook(event, testSecret, time.Now())
			r.Header.Set(api.HeaderSignature, "v1=zz,t=abc")
			return r
		}, wantCode: 401, want: "invalid_signature"},
		{name: "replayed webhook delivery", webhook: func() *http.Request {
			first := ta.signedWebhook(event, testSecret, time.Now())
			replay := first.Clone(first.Context())
			replay.Body = io.NopCloser(strings.NewReader(event))
			res := ta.send(first)
			require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
			require.Equal(t, "processed", res.Body["status"])
			return replay
		}, wantCode: 200, want: "duplicate"},
		{name: "webhook signed with the bearer token instead", webhook: func() *http.Request { return ta.signedWebhook(event, testToken, time.Now()) }, wantCode: 401, want: "invalid_signature"},
		{name: "signed webhook of an unknown type", webhook: func() *http.Request {
			return ta.signedWebhook(`{"id":"evt_t","type":"payment.refunded","provider":"stripe","provider_ref":"pi_h"}`, testSecret, time.Now())
		}, wantCode: 400, want: "invalid_request"},
		{name: "signed webhook with an operator event id", webhook: func() *http.Request {
			return ta.signedWebhook(`{"id":{"$ne":""},"type":"payment.succeeded","provider":"stripe","provider_ref":"pi_h"}`, testSecret, time.Now())
		}, wantCode: 400, want: "invalid_json"},
	}
	require.GreaterOrEqual(t, len(tests), 30)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := ta.on(t)
			var res response
			if tt.webhook != nil {
				res = ta.send(tt.webhook())
			} else {
				res = ta.do(tt.give)
			}
			assert.Equal(t, tt.wantCode, res.Status, "%s", res.Raw)
			if res.Status == http.StatusOK {
				assert.Equal(t, tt.want, res.Body["status"])
			} else {
				assert.Equal(t, tt.want, res.code())
			}
		})
	}
	assert.Equal(t, map[string]any{"account": "victim", "balance": float64(100), "held": float64(0), "available": float64(100)}, ta.balance("victim"))
	assert.Equal(t, float64(100), ta.balance("payee")["balance"], "the webhook credited once")
}
