package credits

import "time"

// Kind says what created a ledger [Entry].
type Kind string

// The kinds of ledger entries.
const (
	KindCredit      Kind = "credit"       // Add
	KindDebit       Kind = "debit"        // Deduct
	KindCapture     Kind = "capture"      // Capture of a hold
	KindTransferOut Kind = "transfer_out" // the paying side of a Transfer
	KindTransferIn  Kind = "transfer_in"  // the receiving side of a Transfer
)

// Entry is one immutable line of an account's ledger. Amount is signed:
// positive for credits, negative for debits, so that an account's balance
// is exactly the sum of its entries' amounts.
type Entry struct {
	ID             string    `bson:"_id"`
	Account        string    `bson:"account"`
	Amount         int64     `bson:"amount"`
	Kind           Kind      `bson:"kind"`
	Reason         string    `bson:"reason,omitempty"`
	RefKind        string    `bson:"refKind,omitempty"`
	RefID          string    `bson:"refId,omitempty"`
	HoldID         string    `bson:"holdId,omitempty"`
	TransferID     string    `bson:"transferId,omitempty"`
	IdempotencyKey string    `bson:"key,omitempty"`
	CreatedAt      time.Time `bson:"createdAt"`
}

// HoldStatus is the state of a [Hold]: open, then exactly one of captured,
// released or expired.
type HoldStatus string

// The states of a hold.
const (
	HoldOpen     HoldStatus = "open"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
	HoldExpired  HoldStatus = "expired"
)

// Hold reserves part of an account's balance for spending whose final cost
// is known later. While open, its Amount counts against the account's
// available balance.
type Hold struct {
	ID             string     `bson:"_id"`
	Account        string     `bson:"account"`
	Amount         int64      `bson:"amount"`
	Captured       int64      `bson:"captured"`
	Status         HoldStatus `bson:"status"`
	EntryID        string     `bson:"entryId,omitempty"` // the capture's entry
	Reason         string     `bson:"reason,omitempty"`
	RefKind        string     `bson:"refKind,omitempty"`
	RefID          string     `bson:"refId,omitempty"`
	IdempotencyKey string     `bson:"key,omitempty"`
	CreatedAt      time.Time  `bson:"createdAt"`
	ExpiresAt      time.Time  `bson:"expiresAt"`
	ClosedAt       time.Time  `bson:"closedAt,omitempty"`
}

// Transfer moves credits between two accounts: one debit entry on From
// and one credit entry on To, written atomically.
type Transfer struct {
	ID        string    `bson:"_id"`
	From      string    `bson:"from"`
	To        string    `bson:"to"`
	Amount    int64     `bson:"amount"`
	Debit     Entry     `bson:"debit"`
	Credit    Entry     `bson:"credit"`
	CreatedAt time.Time `bson:"createdAt"`
}

// Balance is an account's position. Available = Balance - Held is what
// Deduct, Reserve and Transfer may spend.
type Balance struct {
	Account   string
	Balance   int64
	Held      int64
	Available int64
}

// HistoryQuery selects a page of an account's ledger, newest first.
type HistoryQuery struct {
	// Limit is the page size: 50 when zero, at most 1000.
	Limit int
	// Cursor continues after the page that returned it; empty for the
	// first page.
	Cursor string
}

// Report is the result of [Service.Reconcile].
type Report struct {
	// Accounts is how many accounts were checked.
	Accounts int
	// Entries is how many ledger entries were summed.
	Entries int64
	// Mismatches lists every account whose stored position differs from
	// what its entries and holds say. Empty when the ledger is consistent.
	Mismatches []Mismatch
}

// Mismatch is one inconsistency found by [Service.Reconcile].
type Mismatch struct {
	Account string
	// Field is "balance", "held", "available" or "account" (entries or
	// holds of an account that does not exist).
	Field    string
	Stored   int64
	Computed int64
	Detail   string
}
