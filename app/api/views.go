package api

import (
	"time"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/modules/payments"
)

// The API's JSON shapes. They are declared here, apart from the modules'
// types, so that a field added to a stored document never changes the
// API by accident, and so that names are snake_case as the API promises.

type balanceJSON struct {
	Account   string `json:"account"`
	Balance   int64  `json:"balance"`
	Held      int64  `json:"held"`
	Available int64  `json:"available"`
}

func balanceView(b credits.Balance) balanceJSON {
	return balanceJSON{Account: b.Account, Balance: b.Balance, Held: b.Held, Available: b.Available}
}

type entryJSON struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"`
	Amount     int64     `json:"amount"`
	Kind       string    `json:"kind"`
	Reason     string    `json:"reason,omitempty"`
	RefKind    string    `json:"ref_kind,omitempty"`
	RefID      string    `json:"ref_id,omitempty"`
	HoldID     string    `json:"hold_id,omitempty"`
	TransferID string    `json:"transfer_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

func entryView(e credits.Entry) entryJSON {
	return entryJSON{
		ID: e.ID, Account: e.Account, Amount: e.Amount, Kind: string(e.Kind), Reason: e.Reason,
		RefKind: e.RefKind, RefID: e.RefID, HoldID: e.HoldID, TransferID: e.TransferID, CreatedAt: e.CreatedAt,
	}
}

type entriesPage struct {
	Entries    []entryJSON `json:"entries"`
	NextCursor string      `json:"next_cursor"`
}

type transferJSON struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Amount    int64     `json:"amount"`
	Debit     entryJSON `json:"debit"`
	Credit    entryJSON `json:"credit"`
	CreatedAt time.Time `json:"created_at"`
}

func transferView(t credits.Transfer) transferJSON {
	return transferJSON{
		ID: t.ID, From: t.From, To: t.To, Amount: t.Amount,
		Debit: entryView(t.Debit), Credit: entryView(t.Credit), CreatedAt: t.CreatedAt,
	}
}

type holdJSON struct {
	ID        string     `json:"id"`
	Account   string     `json:"account"`
	Amount    int64      `json:"amount"`
	Captured  int64      `json:"captured"`
	Status    string     `json:"status"`
	EntryID   string     `json:"entry_id,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
}

func holdView(h credits.Hold) holdJSON {
	v := holdJSON{
		ID: h.ID, Account: h.Account, Amount: h.Amount, Captured: h.Captured, Status: string(h.Status),
		EntryID: h.EntryID, Reason: h.Reason, CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt,
	}
	if !h.ClosedAt.IsZero() {
		v.ClosedAt = &h.ClosedAt
	}
	return v
}

type mismatchJSON struct {
	Account  string `json:"account"`
	Field    string `json:"field"`
	Stored   int64  `json:"stored"`
	Computed int64  `json:"computed"`
	Detail   string `json:"detail,omitempty"`
}

type reportJSON struct {
	OK         bool           `json:"ok"`
	Accounts   int            `json:"accounts"`
	Entries    int64          `json:"entries"`
	Mismatches []mismatchJSON `json:"mismatches"`
}

func reportView(r credits.Report) reportJSON {
	v := reportJSON{OK: len(r.Mismatches) == 0, Accounts: r.Accounts, Entries: r.Entries, Mismatches: make([]mismatchJSON, 0, len(r.Mismatches))}
	for _, m := range r.Mismatches {
		v.Mismatches = append(v.Mismatches, mismatchJSON{Account: m.Account, Field: m.Field, Stored: m.Stored, Computed: m.Computed, Detail: m.Detail})
	}
	return v
}

type paymentJSON struct {
	ID            string    `json:"id"`
	Account       string    `json:"account"`
	AmountMinor   int64     `json:"amount_minor"`
	Currency      string    `json:"currency"`
	Credits       int64     `json:"credits"`
	Provider      string    `json:"provider"`
	ProviderRef   string    `json:"provider_ref"`
	Status        string    `json:"status"`
	FailureReason string    `json:"failure_reason,omitempty"`
	CreditEntryID string    `json:"credit_entry_id,omitempty"`
	RefundEntryID string    `json:"refund_entry_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func paymentView(p payments.Payment) paymentJSON {
	return paymentJSON{
		ID: p.ID, Account: p.Account, AmountMinor: p.AmountMinor, Currency: p.Currency, Credits: p.Credits,
		Provider: p.Provider, ProviderRef: p.ProviderRef, Status: string(p.Status), FailureReason: p.FailureReason,
		CreditEntryID: p.CreditEntryID, RefundEntryID: p.RefundEntryID, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}
