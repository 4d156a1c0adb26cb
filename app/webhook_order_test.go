package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A provider reports a failed attempt, then the customer's retry succeeds
// on the same payment (Stripe PaymentIntents do exactly this): the money
// that arrived is credited.
func TestWebhookSuccessAfterFailureCredits(t *testing.T) {
	ta := startApp(t)
	p := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-r1",
		Body: `{"account":"ivy","amount_minor":999,"currency":"EUR","credits":1000,"provider":"stripe","provider_ref":"pi_r1"}`}).Body
	res := ta.send(ta.signedWebhook(`{"id":"evt_f","type":"payment.failed","provider":"stripe","provider_ref":"pi_r1","reason":"card declined"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
	res = ta.send(ta.signedWebhook(`{"id":"evt_s","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_r1"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
	assert.Equal(t, "processed", res.Body["status"])
	assert.Equal(t, "completed", ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/payments/" + p["id"].(string)}).Body["status"])
	assert.Equal(t, float64(1000), ta.balance("ivy")["balance"])

	// A failure reported late never undoes the completion.
	res = ta.send(ta.signedWebhook(`{"id":"evt_f2","type":"payment.failed","provider":"stripe","provider_ref":"pi_r1"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
	assert.Equal(t, "ignored", res.Body["status"])
	assert.Equal(t, float64(1000), ta.balance("ivy")["balance"])
}

// Event ids are unique per provider only, and a repeat must be the same
// event: another provider's event with the same id is processed, and the
// same provider reusing an id for a different event is a conflict.
func TestWebhookEventIDsArePerProviderAndChecked(t *testing.T) {
	ta := startApp(t)
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-a",
		Body: `{"account":"jo","amount_minor":100,"currency":"EUR","credits":10,"provider":"stripe","provider_ref":"pi_a"}`})
	pb := ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-b",
		Body: `{"account":"jo","amount_minor":100,"currency":"EUR","credits":20,"provider":"adyen","provider_ref":"psp_b"}`}).Body
	ta.mustStatus(http.StatusCreated, req{Method: "POST", Path: "/v1/payments", Key: "pay-c",
		Body: `{"account":"jo","amount_minor":100,"currency":"EUR","credits":40,"provider":"stripe","provider_ref":"pi_c"}`})

	res := ta.send(ta.signedWebhook(`{"id":"1001","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_a"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
	res = ta.send(ta.signedWebhook(`{"id":"1001","type":"payment.succeeded","provider":"adyen","provider_ref":"psp_b"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Raw)
	assert.Equal(t, "processed", res.Body["status"], "another provider's event")
	assert.Equal(t, "completed", ta.mustStatus(http.StatusOK, req{Method: "GET", Path: "/v1/payments/" + pb["id"].(string)}).Body["status"])

	res = ta.send(ta.signedWebhook(`{"id":"1001","type":"payment.succeeded","provider":"stripe","provider_ref":"pi_c"}`, testSecret, time.Now()))
	require.Equal(t, http.StatusConflict, res.Status, "%s", res.Raw)
	assert.Equal(t, "event_conflict", res.code())
	assert.Equal(t, float64(30), ta.balance("jo")["balance"], "pi_a and psp_b credited, pi_c not")
}
