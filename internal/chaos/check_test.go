package chaos

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/txkit/txkit/modules/credits"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before = t0.Add(time.Second)
	cutoff = t0.Add(2 * time.Second)
	after  = t0.Add(3 * time.Second)
)

func op(id string, kind Kind, out Outcome, f func(*Op)) Op {
	o := Op{ID: id, Kind: kind, Ref: id, Outcome: out, Start: t0, End: before}
	if f != nil {
		f(&o)
	}
	return o
}

func entry(id, account string, amount int64, kind, ref string) EntryDoc {
	return EntryDoc{ID: id, Account: account, Amount: amount, Kind: kind, RefKind: RefKind, RefID: ref}
}

// ledger is a consistent ledger and the history that made it: a funding
// add of 100 to a, a reserve of 30 on a, a transfer of 20 from a to b, a
// payment of 50 to b completed, and a deduct of 5 from b that failed.
func ledger() (Snapshot, []Op) {
	s := Snapshot{
		Accounts: []AccountDoc{
			{ID: "a", Balance: 80, Held: 30, Available: 50},
			{ID: "b", Balance: 70, Available: 70, Pending: []EntryDoc{entry("e3", "b", 20, "transfer_in", "t1")}},
		},
		Entries: []EntryDoc{
			entry("e1", "a", 100, "credit", "add1"),
			entry("e2", "a", -20, "transfer_out", "t1"),
			{ID: "e4", Account: "b", Amount: 50, Kind: "credit", RefKind: "payment", RefID: "p1", Key: "payment:p1:complete"},
		},
		Holds:    []HoldDoc{{ID: "h1", Account: "a", Amount: 30, Status: "open", RefKind: RefKind, RefID: "res1"}},
		Payments: []PaymentDoc{{ID: "p1", Account: "b", Credits: 50, Provider: Provider, ProviderRef: "pc1", Status: "completed", CreditEntryID: "e4"}},
	}
	ops := []Op{
		op("add1", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "a", 100, "e1" }),
		op("res1", OpReserve, Applied, func(o *Op) { o.Account, o.Amount, o.Hold = "a", 30, "h1" }),
		op("t1", OpTransfer, Applied, func(o *Op) { o.Account, o.To, o.Amount = "a", "b", 20 }),
		op("pc1", OpPayCreate, Applied, func(o *Op) { o.Account, o.Amount, o.Payment = "b", 50, "p1" }),
		op("c1", OpComplete, Applied, func(o *Op) { o.Payment, o.Ref = "p1", "" }),
		op("d1", OpDeduct, Failed, func(o *Op) { o.Account, o.Amount, o.Err = "b", 5, "boom" }),
	}
	return s, ops
}

func invariants(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Invariant) {
			out = append(out, v.Invariant)
		}
	}
	slices.Sort(out)
	return out
}

func TestCheckFindsEachKindOfBrokenLedger(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(s *Snapshot, ops *[]Op)
		want    []string
	}{
		{
			name:    "a consistent ledger passes",
			breakIt: func(*Snapshot, *[]Op) {},
			want:    nil,
		},
		{
			name:    "a balance that is not the sum of its entries",
			breakIt: func(s *Snapshot, _ *[]Op) { s.Accounts[0].Balance, s.Accounts[0].Available = 81, 51 },
			want:    []string{InvBalance},
		},
		{
			name: "a held amount that is not the sum of open holds",
			breakIt: func(s *Snapshot, ops *[]Op) {
				s.Holds[0].Status = "released"
				*ops = append(*ops, op("r1", OpRelease, Applied, func(o *Op) { o.Hold, o.Ref = "h1", "" }))
			},
			want: []string{InvHeld},
		},
		{
			name: "entries whose sum overflows int64",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add9", OpAdd, Applied, func(o *Op) { o.Account, o.Amount = "a", math.MaxInt64 }))
				s.Entries = append(s.Entries, entry("e99", "a", math.MaxInt64, "credit", "add9"))
			},
			want: []string{InvBalance},
		},
		{
			name:    "an available balance that is not balance − held",
			breakIt: func(s *Snapshot, _ *[]Op) { s.Accounts[1].Available = 60 },
			want:    []string{InvAvailable},
		},
		{
			name: "a negative available balance",
			breakIt: func(s *Snapshot, ops *[]Op) {
				s.Holds[0].Amount, s.Accounts[0].Held, s.Accounts[0].Available = 90, 90, -10
				(*ops)[1].Amount = 90
			},
			want: []string{InvAvailable},
		},
		{
			name: "an operation reported applied that is missing",
			breakIt: func(_ *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add2", OpAdd, Applied, func(o *Op) { o.Account, o.Amount = "a", 7 }))
			},
			want: []string{InvAppliedOnce},
		},
		{
			name: "an operation applied twice",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Entries = append(s.Entries, entry("e1b", "a", 100, "credit", "add1"))
				s.Accounts[0].Balance, s.Accounts[0].Available = 180, 150
			},
			want: []string{InvAppliedOnce},
		},
		{
			name: "an operation reported failed that was applied",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Entries = append(s.Entries, entry("e5", "b", -5, "debit", "d1"))
				s.Accounts[1].Balance, s.Accounts[1].Available = 65, 65
			},
			want: []string{InvNotApplied},
		},
		{
			name: "an operation of unknown outcome applied in part",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("t2", OpTransfer, Unknown, func(o *Op) { o.Account, o.To, o.Amount = "b", "a", 10 }))
				s.Entries = append(s.Entries, entry("e6", "b", -10, "transfer_out", "t2"))
				s.Accounts[1].Balance, s.Accounts[1].Available = 60, 60
			},
			want: []string{InvUnknown},
		},
		{
			name: "a payment credited twice",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Entries = append(s.Entries, EntryDoc{ID: "e7", Account: "b", Amount: 50, Kind: "credit", RefKind: "payment", RefID: "p1", Key: "payment:p1:complete"})
				s.Accounts[1].Balance, s.Accounts[1].Available = 120, 120
			},
			want: []string{InvPaymentOnce},
		},
		{
			name: "a payment completed that was reported not completed",
			breakIt: func(_ *Snapshot, ops *[]Op) {
				(*ops)[4].Outcome, (*ops)[4].Err = Failed, "commit: boom"
			},
			want: []string{InvNotApplied},
		},
		{
			name: "an idempotency key with two effects",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add3", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Key = "a", 1, "k" }))
				*ops = append(*ops, op("add4", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Key, o.Repeat, o.Conflict = "a", 2, "k", "add3", true }))
				e3, e4 := entry("e8", "a", 1, "credit", "add3"), entry("e9", "a", 2, "credit", "add4")
				e3.Key, e4.Key = "k", "k"
				s.Entries = append(s.Entries, e3, e4)
				s.Accounts[0].Balance, s.Accounts[0].Available = 83, 53
			},
			want: []string{InvKeyOneEffect},
		},
		{
			name: "an entry that no operation made",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Entries = append(s.Entries, EntryDoc{ID: "e10", Account: "a", Amount: 3, Kind: "credit"})
				s.Accounts[0].Balance, s.Accounts[0].Available = 83, 53
			},
			want: []string{InvExplained},
		},
		{
			name: "a captured hold without its capture entry",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Holds[0].Status, s.Holds[0].Captured = "captured", 30
				s.Accounts[0].Held, s.Accounts[0].Available = 0, 80
			},
			want: []string{InvHoldState},
		},
		{
			name: "an entry embedded twice",
			breakIt: func(s *Snapshot, _ *[]Op) {
				s.Accounts[1].Pending = append(s.Accounts[1].Pending, s.Accounts[1].Pending[0])
			},
			want: []string{InvAppliedOnce},
		},
		{
			name: "a failed operation that ended after the snapshot began binds nothing yet",
			breakIt: func(s *Snapshot, ops *[]Op) {
				(*ops)[5].End = after
				s.Entries = append(s.Entries, entry("e5", "b", -5, "debit", "d1"))
				s.Accounts[1].Balance, s.Accounts[1].Available = 65, 65
			},
			want: nil,
		},
		{
			// Through -http every payment create is keyed, and a failed one
			// is repeated with its key and provider reference: the repeat
			// creates the payment that the first call truly did not
			// (txchaos -http -seed 403 on 7b90697, finding
			// chaos-http-repeated-create-blamed-on-first).
			name: "a payment create that failed, created by its repeat",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops,
					op("pc2", OpPayCreate, Failed, func(o *Op) {
						o.Account, o.Amount, o.Key, o.Err = "b", 10, "k-pc2", "HTTP 503 database_unavailable"
					}),
					op("pc3", OpPayCreate, Applied, func(o *Op) {
						o.Account, o.Amount, o.Key, o.Ref, o.Repeat, o.Payment = "b", 10, "k-pc2", "pc2", "pc2", "p2"
					}))
				s.Payments = append(s.Payments, PaymentDoc{ID: "p2", Account: "b", Credits: 10, Provider: Provider, ProviderRef: "pc2", Status: "pending"})
			},
			want: nil,
		},
		{
			name: "a payment create that failed, and every repeat of it, but it exists",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops,
					op("pc2", OpPayCreate, Failed, func(o *Op) {
						o.Account, o.Amount, o.Key, o.Err = "b", 10, "k-pc2", "HTTP 503 database_unavailable"
					}),
					op("pc3", OpPayCreate, Failed, func(o *Op) {
						o.Account, o.Amount, o.Key, o.Ref, o.Repeat, o.Err = "b", 10, "k-pc2", "pc2", "pc2", "HTTP 503 database_unavailable"
					}))
				s.Payments = append(s.Payments, PaymentDoc{ID: "p2", Account: "b", Credits: 10, Provider: Provider, ProviderRef: "pc2", Status: "pending"})
			},
			want: []string{InvNotApplied},
		},
		{
			name: "an empty placeholder left by a failed add is no account",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add2", OpAdd, Failed, func(o *Op) { o.Account, o.Amount, o.Err = "c", 10, "context deadline exceeded" }))
				s.Accounts = append(s.Accounts, AccountDoc{ID: "c", Placeholder: true})
			},
			want: nil,
		},
		{
			// An older release's credit applies to a placeholder as to an
			// account and leaves the mark: a credit made it an account.
			name: "a placeholder that a credit made an account, still marked",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add2", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "c", 10, "e9" }))
				s.Entries = append(s.Entries, entry("e9", "c", 10, "credit", "add2"))
				s.Accounts = append(s.Accounts, AccountDoc{ID: "c", Balance: 10, Available: 10, Placeholder: true, UpdatedAt: before})
			},
			want: nil,
		},
		{
			name: "a placeholder that a credit made an account and a debit emptied, still marked",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops,
					op("add2", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "c", 10, "e9" }),
					op("d2", OpDeduct, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "c", 10, "e10" }))
				s.Entries = append(s.Entries, entry("e9", "c", 10, "credit", "add2"), entry("e10", "c", -10, "debit", "d2"))
				s.Accounts = append(s.Accounts, AccountDoc{ID: "c", Placeholder: true, UpdatedAt: before})
			},
			want: nil,
		},
		{
			name: "a placeholder that holds a position is an account",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add2", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "c", 10, "e9" }))
				s.Entries = append(s.Entries, entry("e9", "c", 10, "credit", "add2"))
				s.Accounts = append(s.Accounts, AccountDoc{ID: "c", Balance: 10, Available: 10, Placeholder: true})
			},
			want: nil,
		},
		{
			name: "entries of an account that is a placeholder",
			breakIt: func(s *Snapshot, ops *[]Op) {
				*ops = append(*ops, op("add2", OpAdd, Applied, func(o *Op) { o.Account, o.Amount, o.Entry = "c", 10, "e9" }))
				s.Entries = append(s.Entries, entry("e9", "c", 10, "credit", "add2"))
				s.Accounts = append(s.Accounts, AccountDoc{ID: "c", Placeholder: true})
			},
			want: []string{InvBalance},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ops := ledger()
			tt.breakIt(&s, &ops)
			vs, _ := Check(s, ops, cutoff)
			assert.Equal(t, tt.want, invariants(vs), "%v", vs)
		})
	}
}

// A placeholder is no account: the recount, as Reconcile, does not count
// it, until a write (a credit, by any release) makes it one, even one a
// debit then empties.
func TestRecountDoesNotCountAPlaceholder(t *testing.T) {
	tests := []struct {
		name string
		give AccountDoc
		want int
	}{
		{"as the fence left it", AccountDoc{ID: "c", Placeholder: true}, 2},
		{"written since, still marked, empty", AccountDoc{ID: "c", Placeholder: true, UpdatedAt: before}, 3},
		{"holding a position, still marked", AccountDoc{ID: "c", Placeholder: true, Balance: 1, Available: 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ops := ledger()
			s.Accounts = append(s.Accounts, tt.give)
			_, rc := Check(s, ops, cutoff)
			assert.Equal(t, tt.want, rc.Accounts)
		})
	}
}

func TestRecountAgreesWithReconcileOnlyWhenTheyMatch(t *testing.T) {
	rc := Recount{Accounts: 2, Entries: 4, Bad: map[string]bool{"a": true}}
	tests := []struct {
		name string
		give credits.Report
		want int
	}{
		{"both see account a wrong", credits.Report{Accounts: 2, Entries: 4, Mismatches: []credits.Mismatch{{Account: "a", Field: "balance"}}}, 0},
		{"Reconcile misses account a", credits.Report{Accounts: 2, Entries: 4}, 1},
		{"Reconcile also blames b", credits.Report{Accounts: 2, Entries: 4, Mismatches: []credits.Mismatch{{Account: "a"}, {Account: "b"}}}, 1},
		{"Reconcile counts other entries", credits.Report{Accounts: 2, Entries: 5, Mismatches: []credits.Mismatch{{Account: "a"}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Len(t, CompareReconcile(tt.give, rc, true), tt.want)
		})
	}
}

func TestAnOperationThatOutlivesItsContextBreaksTheBound(t *testing.T) {
	ops := []Op{
		op("ontime", OpAdd, Applied, func(o *Op) { o.CtxEnd, o.End = t0, t0.Add(time.Second) }),
		op("late", OpDeduct, Unknown, func(o *Op) { o.CtxEnd, o.End, o.Fault = t0, t0.Add(61*time.Second), "deadline 50ms" }),
		op("nodeadline", OpAdd, Applied, func(o *Op) { o.End = t0.Add(time.Hour) }),
		op("pending", OpAdd, Pending, func(o *Op) { o.CtxEnd, o.End = t0, time.Time{} }),
	}
	vs := late(ops, 30*time.Second)
	if assert.Len(t, vs, 1) {
		assert.Equal(t, InvBounded, vs[0].Invariant)
		assert.Equal(t, []string{"late"}, vs[0].Ops)
		assert.Contains(t, vs[0].Detail, "1m1s after its context ended")
	}
	assert.Len(t, late(ops, 2*time.Minute), 0)

	lat := latencies(ops)
	assert.InDelta(t, 3_600_000, lat[OpAdd].Max, 0.001)
	assert.Contains(t, lat[OpAdd].Slowest, "nodeadline")
	assert.InDelta(t, 61_000, lat[OpDeduct].P50, 0.001)
}
