package chaos

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTP is the [Backend] that drives the application's HTTP API (app/):
// every mutation carries an Idempotency-Key, which the API passes to the
// ledger as "http:<key>"; payments complete and fail by signed webhooks.
type HTTP struct {
	Base          string // e.g. http://127.0.0.1:8080
	Token         string // TXKIT_API_TOKEN
	WebhookSecret string // TXKIT_WEBHOOK_SECRET
	Client        *http.Client
}

var _ Backend = (*HTTP)(nil)

// HTTPError is an answer of the API other than 2xx.
type HTTPError struct {
	Status int
	Code   string // the problem's code
	Detail string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Detail)
}

// ErrNoAnswer is returned when a request was sent and no answer came (the
// connection failed, or the caller's context ended): its outcome is
// unknown.
var ErrNoAnswer = errors.New("chaos: request sent, no answer")

// businessCodes are the API's problem codes for refusals by a business
// rule: nothing was written.
var businessCodes = map[string]bool{
	"insufficient_credits": true, "invalid_transition": true, "idempotency_conflict": true,
	"hold_expired": true, "hold_closed": true, "duplicate_provider_ref": true, "overflow": true,
	"account_not_found": true, "hold_not_found": true, "payment_not_found": true,
	"invalid_amount": true, "event_conflict": true,
}

// classifyHTTP is Classify for the errors of [HTTP].
func classifyHTTP(err error) (Outcome, bool) {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		switch {
		case businessCodes[he.Code]:
			return Rejected, true
		case he.Status == http.StatusGatewayTimeout || he.Code == "timeout" || he.Code == "outcome_unknown":
			return Unknown, true
		}
		return Failed, true
	case errors.Is(err, ErrNoAnswer):
		return Unknown, true
	}
	return 0, false
}

// LedgerKey is the ledger's idempotency key for an API key.
func LedgerKey(key string) string { return "http:" + key }

type entryJSON struct {
	ID string `json:"id"`
}

// Do implements [Backend].
func (h *HTTP) Do(ctx context.Context, op *Op) error {
	switch op.Kind {
	case OpAdd, OpDeduct:
		path := "/credits"
		if op.Kind == OpDeduct {
			path = "/debits"
		}
		var e entryJSON
		err := h.post(ctx, "/v1/accounts/"+url.PathEscape(op.Account)+path, op.Key, map[string]any{"amount": op.Amount, "reason": "chaos"}, &e)
		op.Entry = e.ID
		return err
	case OpTransfer:
		return h.post(ctx, "/v1/transfers", op.Key, map[string]any{"from": op.Account, "to": op.To, "amount": op.Amount}, nil)
	case OpReserve:
		var hold struct {
			ID string `json:"id"`
		}
		ttl := (time.Duration(op.TTL) + time.Second - 1) / time.Second
		err := h.post(ctx, "/v1/accounts/"+url.PathEscape(op.Account)+"/holds", op.Key, map[string]any{"amount": op.Amount, "ttl_seconds": int64(ttl)}, &hold)
		op.Hold = hold.ID
		return err
	case OpCapture:
		var e entryJSON
		err := h.post(ctx, "/v1/holds/"+url.PathEscape(op.Hold)+"/capture", op.Key, map[string]any{"amount": op.Amount}, &e)
		op.Entry = e.ID
		return err
	case OpRelease:
		return h.post(ctx, "/v1/holds/"+url.PathEscape(op.Hold)+"/release", op.Key, map[string]any{}, nil)
	case OpPayCreate:
		var p struct {
			ID string `json:"id"`
		}
		err := h.post(ctx, "/v1/payments", op.Key, map[string]any{
			"account": op.Account, "amount_minor": op.Amount * 10, "currency": "EUR", "credits": op.Amount,
			"provider": Provider, "provider_ref": op.Ref,
		}, &p)
		op.Payment = p.ID
		return err
	case OpComplete:
		if op.ByRef != "" {
			return h.webhook(ctx, op, "payment.succeeded")
		}
		return h.post(ctx, "/v1/payments/"+url.PathEscape(op.Payment)+"/complete", op.Key, map[string]any{}, nil)
	case OpFail:
		return h.webhook(ctx, op, "payment.failed")
	case OpRefund:
		return h.post(ctx, "/v1/payments/"+url.PathEscape(op.Payment)+"/refund", op.Key, map[string]any{}, nil)
	}
	return fmt.Errorf("chaos: %s is not offered by the HTTP API", op.Kind)
}

// webhook delivers a signed payment event; op.Event names it (two
// deliveries of one event share it).
func (h *HTTP) webhook(ctx context.Context, op *Op, typ string) error {
	ref := op.ByRef
	if ref == "" {
		ref = op.PayRef
	}
	body, _ := json.Marshal(map[string]any{"id": op.Event, "type": typ, "provider": Provider, "provider_ref": ref, "reason": "chaos"})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(h.WebhookSecret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Base+"/webhooks/payments", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Txkit-Signature", "t="+ts+",v1="+hex.EncodeToString(m.Sum(nil)))
	var res struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	}
	if err := h.do(req, &res); err != nil {
		return err
	}
	if res.Status == "ignored" {
		return &HTTPError{Status: http.StatusOK, Code: "invalid_transition", Detail: "webhook ignored: " + res.Detail}
	}
	return nil
}

func (h *HTTP) post(ctx context.Context, path, key string, body any, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.Token)
	req.Header.Set("Idempotency-Key", key)
	return h.do(req, out)
}

func (h *HTTP) do(req *http.Request, out any) error {
	resp, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(b, &p)
		return &HTTPError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("chaos: decode %s answer: %w", req.URL.Path, err)
		}
	}
	return nil
}

// Balance implements [Backend].
func (h *HTTP) Balance(ctx context.Context, account string) (int64, int64, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.Base+"/v1/accounts/"+url.PathEscape(account), nil)
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	var b struct {
		Balance   int64 `json:"balance"`
		Held      int64 `json:"held"`
		Available int64 `json:"available"`
	}
	err = h.do(req, &b)
	return b.Balance, b.Held, b.Available, err
}
