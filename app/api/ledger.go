package api

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/txkit/txkit/modules/credits"
)

// Bounds of the ledger routes' inputs.
const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxReasonLen    = 512
	maxHoldTTL      = 30 * 24 * time.Hour
)

// validCursor is the shape of a page cursor: opaque, URL-safe.
var validCursor = regexp.MustCompile(`^[A-Za-z0-9_=.:-]{1,512}$`)

func (a *api) getBalance(w http.ResponseWriter, r *http.Request) error {
	account, err := pathID(r, "account")
	if err != nil {
		return err
	}
	b, err := a.credits.Balance(r.Context(), account)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, balanceView(b))
	return nil
}

func (a *api) listEntries(w http.ResponseWriter, r *http.Request) error {
	account, err := pathID(r, "account")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return errBadRequest(codeBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxPageSize))
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if cursor != "" && !validCursor.MatchString(cursor) {
		return errBadRequest(codeBadRequest, "cursor is not one this API returned")
	}
	entries, next, err := a.credits.History(r.Context(), account, credits.HistoryQuery{Limit: limit, Cursor: cursor})
	if err != nil {
		return err
	}
	out := entriesPage{Entries: make([]entryJSON, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		out.Entries = append(out.Entries, entryView(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// amountRequest is the body of credits and debits.
type amountRequest struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

func (a *api) addCredits(w http.ResponseWriter, r *http.Request) error {
	return a.changeBalance(w, r, a.credits.Add)
}

func (a *api) deductCredits(w http.ResponseWriter, r *http.Request) error {
	return a.changeBalance(w, r, a.credits.Deduct)
}

func (a *api) changeBalance(w http.ResponseWriter, r *http.Request,
	change func(ctx context.Context, account string, amount int64, opts ...credits.OpOption) (credits.Entry, error),
) error {
	account, err := pathID(r, "account")
	if err != nil {
		return err
	}
	var req amountRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := checkAmount("amount", req.Amount); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	// No transaction and no stored response: the ledger's own key makes
	// the call exactly-once on its single-document path, and a repeat
	// returns the same entry, so the same response; a repeat with other
	// parameters is the ledger's ErrIdempotencyConflict (409).
	key, err := idempotencyKeyOf(r)
	if err != nil {
		return err
	}
	if err := a.refuseLegacyKey(r.Context(), key); err != nil {
		return err
	}
	var replayed bool
	e, err := change(r.Context(), account, req.Amount,
		credits.IdempotencyKey(ledgerKey(key)), credits.Reason(req.Reason), credits.Replayed(&replayed))
	if err != nil {
		return sentWriteError(err)
	}
	if replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	writeJSON(w, http.StatusCreated, entryView(e))
	return nil
}

type transferRequest struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

func (a *api) transfer(w http.ResponseWriter, r *http.Request) error {
	var req transferRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if !validID.MatchString(req.From) {
		return invalidID("from")
	}
	if !validID.MatchString(req.To) {
		return invalidID("to")
	}
	if req.From == req.To {
		return errBadRequest(codeInvalidAccount, "from and to must be different accounts")
	}
	if err := checkAmount("amount", req.Amount); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	return ledgerOp(a, w, r, http.StatusCreated, func(ctx context.Context, key credits.OpOption, replayed *bool) (credits.Transfer, error) {
		return a.credits.Transfer(ctx, req.From, req.To, req.Amount, key, credits.Reason(req.Reason), credits.Replayed(replayed))
	}, func(t credits.Transfer) any { return transferView(t) })
}

type holdRequest struct {
	Amount     int64  `json:"amount"`
	TTLSeconds int64  `json:"ttl_seconds"`
	Reason     string `json:"reason,omitempty"`
}

func (a *api) reserve(w http.ResponseWriter, r *http.Request) error {
	account, err := pathID(r, "account")
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := checkAmount("amount", req.Amount); err != nil {
		return err
	}
	if req.TTLSeconds < 1 || req.TTLSeconds > int64(maxHoldTTL/time.Second) {
		return errBadRequest(codeBadRequest, "ttl_seconds must be an integer from 1 to "+strconv.FormatInt(int64(maxHoldTTL/time.Second), 10))
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	return ledgerOp(a, w, r, http.StatusCreated, func(ctx context.Context, key credits.OpOption, replayed *bool) (credits.Hold, error) {
		opts := []credits.OpOption{key, credits.Replayed(replayed)}
		if req.Reason != "" {
			opts = append(opts, credits.Reason(req.Reason))
		}
		return a.credits.Reserve(ctx, account, req.Amount, time.Duration(req.TTLSeconds)*time.Second, opts...)
	}, func(h credits.Hold) any { return holdView(h) })
}

type captureRequest struct {
	Amount int64  `json:"amount"`
	Reason string `json:"reason,omitempty"`
}

func (a *api) capture(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req captureRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := checkAmount("amount", req.Amount); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	return ledgerOp(a, w, r, http.StatusCreated, func(ctx context.Context, key credits.OpOption, replayed *bool) (credits.Entry, error) {
		opts := []credits.OpOption{key, credits.Replayed(replayed)}
		if req.Reason != "" {
			opts = append(opts, credits.Reason(req.Reason))
		}
		return a.credits.Capture(ctx, id, req.Amount, opts...)
	}, func(e credits.Entry) any { return entryView(e) })
}

// emptyRequest is the body of routes that take none ({} or nothing).
type emptyRequest struct{}

func (a *api) release(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req emptyRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	return a.recorded(w, r, req, func(ctx context.Context) (int, any, error) {
		h, err := a.credits.Release(ctx, id)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, holdView(h), nil
	})
}

func (a *api) reconcile(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.credits.Reconcile(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reportView(rep))
	return nil
}

// checkAmount rejects what no ledger operation accepts, before any I/O.
func checkAmount(field string, v int64) error {
	if v <= 0 {
		return errBadRequest(codeInvalidAmount, field+" must be a positive integer")
	}
	return nil
}

func checkReason(s string) error {
	if len(s) > maxReasonLen {
		return errBadRequest(codeBadRequest, "reason is longer than "+strconv.Itoa(maxReasonLen)+" bytes")
	}
	return nil
}
