package api

import (
	"context"
	"net/http"
	"regexp"

	"github.com/txkit/txkit/modules/payments"
)

// validCurrency is an ISO 4217 code.
var validCurrency = regexp.MustCompile(`^[A-Z]{3}$`)

type paymentRequest struct {
	Account     string `json:"account"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Credits     int64  `json:"credits"`
	Provider    string `json:"provider"`
	ProviderRef string `json:"provider_ref"`
}

func (a *api) createPayment(w http.ResponseWriter, r *http.Request) error {
	var req paymentRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case !validID.MatchString(req.Account):
		return invalidID("account")
	case !validID.MatchString(req.Provider):
		return invalidID("provider")
	case !validID.MatchString(req.ProviderRef):
		return invalidID("provider_ref")
	case !validCurrency.MatchString(req.Currency):
		return errBadRequest(codeInvalidPayment, "currency must be an ISO 4217 code such as USD")
	}
	if err := checkAmount("amount_minor", req.AmountMinor); err != nil {
		return err
	}
	if err := checkAmount("credits", req.Credits); err != nil {
		return err
	}
	return a.recorded(w, r, req, func(ctx context.Context) (int, any, error) {
		p, err := a.payments.Create(ctx, payments.NewPayment{
			Account: req.Account, AmountMinor: req.AmountMinor, Currency: req.Currency,
			Credits: req.Credits, Provider: req.Provider, ProviderRef: req.ProviderRef,
		})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, paymentView(p), nil
	})
}

func (a *api) getPayment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := a.payments.GetPayment(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, paymentView(p))
	return nil
}

func (a *api) completePayment(w http.ResponseWriter, r *http.Request) error {
	return a.transition(w, r, a.payments.Complete)
}

func (a *api) refundPayment(w http.ResponseWriter, r *http.Request) error {
	return a.transition(w, r, a.payments.Refund)
}

// transition moves a payment along its state machine. The payment's own
// guarded state is what makes a repeat harmless; the key's record makes
// it answer the same.
func (a *api) transition(w http.ResponseWriter, r *http.Request, move func(ctx context.Context, id string) (payments.Payment, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req emptyRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	return a.recorded(w, r, req, func(ctx context.Context) (int, any, error) {
		p, err := move(ctx, id)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, paymentView(p), nil
	})
}
