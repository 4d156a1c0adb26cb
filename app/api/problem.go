package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an RFC 9457 problem detail, the body of every error response.
// Code is a stable snake_case extension member that clients switch on;
// Type is derived from it.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`

	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

// problemTypeBase prefixes the code to make the problem type: a URN, since
// the type identifies the problem and is not meant to be dereferenced.
const problemTypeBase = "urn:txkit:problem:"

// Stable error codes. docs/app.md lists them; clients depend on them.
const (
	codeBadRequest            = "invalid_request"
	codeInvalidJSON           = "invalid_json"
	codeInvalidAmount         = "invalid_amount"
	codeInvalidAccount        = "invalid_account"
	codeInvalidID             = "invalid_id"
	codeInvalidPayment        = "invalid_payment"
	codeMissingIdempotencyKey = "missing_idempotency_key"
	codeInvalidIdempotencyKey = "invalid_idempotency_key"
	codeUnauthorized          = "unauthorized"
	codeBadSignature          = "invalid_signature"
	codeStaleSignature        = "stale_signature"
	codeNotFound              = "not_found"
	codeAccountNotFound       = "account_not_found"
	codeHoldNotFound          = "hold_not_found"
	codePaymentNotFound       = "payment_not_found"
	codeMethodNotAllowed      = "method_not_allowed"
	codeInsufficientCredits   = "insufficient_credits"
	codeInvalidTransition     = "invalid_transition"
	codeIdempotencyConflict   = "idempotency_conflict"
	codeEventConflict         = "event_conflict"
	codeHoldExpired           = "hold_expired"
	codeHoldClosed            = "hold_closed"
	codeDuplicateProviderRef  = "duplicate_provider_ref"
	codeOverflow              = "overflow"
	codeOutcomeUnknown        = "outcome_unknown"
	codeTooLarge              = "body_too_large"
	codeUnsupportedMediaType  = "unsupported_media_type"
	codeUnavailable           = "database_unavailable"
	codeContended             = "account_contended"
	codeTimeout               = "timeout"
	codeInternal              = "internal_error"
)

// apiError is an error that knows its HTTP answer. Handlers return it (or
// a business error that [toProblem] maps) and never write errors
// themselves.
type apiError struct {
	Status int
	Code   string
	Detail string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Detail }

func errBadRequest(code, detail string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Detail: detail}
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Type == "" {
		p.Type = problemTypeBase + p.Code
	}
	if id := requestIDFrom(r.Context()); id != "" {
		p.RequestID = id
		p.Instance = "urn:txkit:request:" + id
	}
	body, _ := json.Marshal(p) // a struct of strings and an int: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
