package chaos

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// The invariants a [Violation] names.
const (
	InvBalance      = "balance = Σ entries"
	InvHeld         = "held = Σ open holds"
	InvAvailable    = "available = balance − held ≥ 0"
	InvAppliedOnce  = "applied exactly once"
	InvNotApplied   = "not applied is absent"
	InvUnknown      = "unknown is all or nothing"
	InvPaymentOnce  = "payment credited once"
	InvKeyOneEffect = "a key has one effect"
	InvExplained    = "every entry is explained"
	InvHoldState    = "hold state matches the ledger"
	InvReconcile    = "Reconcile agrees with the recount"
	InvSettles      = "the ledger settles after the run"
	InvRead         = "reads are consistent"
	InvBounded      = "an operation returns soon after its context ends"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string   `json:"invariant"`
	Detail    string   `json:"detail"`
	Account   string   `json:"account,omitempty"`
	Ops       []string `json:"ops,omitempty"`
}

func (v Violation) String() string {
	s := v.Invariant + ": " + v.Detail
	if len(v.Ops) > 0 {
		s += " (ops " + strings.Join(v.Ops, ", ") + ")"
	}
	return s
}

// RefKind is the reference kind that marks the workload's entries and
// holds; payments' entries carry "payment".
const RefKind = "chaos"

// Provider is the payment provider name of the workload's payments.
const Provider = "chaos"

// Recount is what the checker computed from a snapshot by itself.
type Recount struct {
	Accounts int
	Entries  int64
	// Bad lists accounts whose stored position disagrees with the recount.
	Bad map[string]bool
	// Repeated are the ids of the entries embedded more than once (twice
	// in one account, or in two accounts) and not in the entries
	// collection, which the recount counts once: a count of the collection
	// plus each account's uncopied entries counts them again.
	Repeated []string
}

// Check holds ops, the whole history (pending operations included), against
// s. An operation counts as settled, and so binds the ledger, only if it
// had returned before cutoff (the instant s was begun); later or pending
// ones may or may not show.
func Check(s Snapshot, ops []Op, cutoff time.Time) ([]Violation, Recount) {
	c := &checker{s: s, cutoff: cutoff}
	c.index(ops)
	c.accounts()
	c.effects()
	c.keys()
	c.explained()
	c.holds()
	c.checkPayments()
	return c.vs, c.rc
}

type checker struct {
	s      Snapshot
	cutoff time.Time
	vs     []Violation
	rc     Recount

	entries   map[string]EntryDoc // merged, by id
	repeated  []string            // see Recount.Repeated
	byRef     map[string][]EntryDoc
	byHold    map[string][]EntryDoc
	byPayment map[string][]EntryDoc
	byKey     map[string][]EntryDoc
	holdByRef map[string][]HoldDoc
	holdByKey map[string][]HoldDoc
	holdByID  map[string]HoldDoc

	groups   map[string][]Op // by Ref: an operation and its repeats
	refs     map[string]bool
	holdOps  map[string][]Op // release and capture ops by hold id
	payOps   map[string][]Op // by payment id
	creates  []Op
	payments map[string]PaymentDoc
}

func (c *checker) fail(inv, account, format string, args ...any) {
	c.failOps(inv, account, nil, format, args...)
}

func (c *checker) failOps(inv, account string, ops []Op, format string, args ...any) {
	v := Violation{Invariant: inv, Account: account, Detail: fmt.Sprintf(format, args...)}
	for _, o := range ops {
		v.Ops = append(v.Ops, o.ID)
	}
	c.vs = append(c.vs, v)
}

func (c *checker) settled(o Op) bool {
	return o.Outcome != Pending && !o.End.IsZero() && o.End.Before(c.cutoff)
}

func (c *checker) index(ops []Op) {
	c.entries = map[string]EntryDoc{}
	for _, e := range c.s.Entries {
		if _, dup := c.entries[e.ID]; dup {
			c.fail(InvAppliedOnce, e.Account, "entry id %s stored twice in the entries collection", e.ID)
		}
		c.entries[e.ID] = e
	}
	uncopied := map[string]int{}
	for _, a := range c.s.Accounts {
		for _, e := range a.Pending {
			if _, copied := c.entries[e.ID]; !copied {
				if uncopied[e.ID]++; uncopied[e.ID] == 2 {
					c.repeated = append(c.repeated, e.ID)
				}
			}
		}
	}
	slices.Sort(c.repeated)
	for _, a := range c.s.Accounts {
		seen := map[string]bool{}
		for _, e := range a.Pending {
			if seen[e.ID] {
				c.fail(InvAppliedOnce, a.ID, "entry %s embedded twice in account %s", e.ID, a.ID)
				continue
			}
			seen[e.ID] = true
			if e.Account != a.ID {
				c.fail(InvBalance, a.ID, "entry %s of account %q is embedded in account %s", e.ID, e.Account, a.ID)
			}
			if old, ok := c.entries[e.ID]; ok {
				if old != e {
					c.fail(InvAppliedOnce, a.ID, "entry %s differs between the entries collection and account %s", e.ID, a.ID)
				}
				continue
			}
			c.entries[e.ID] = e
		}
	}
	c.byRef, c.byHold, c.byPayment, c.byKey = map[string][]EntryDoc{}, map[string][]EntryDoc{}, map[string][]EntryDoc{}, map[string][]EntryDoc{}
	for _, id := range sortedKeys(c.entries) {
		e := c.entries[id]
		switch {
		case e.RefKind == RefKind:
			c.byRef[e.RefID] = append(c.byRef[e.RefID], e)
		case e.RefKind == "payment":
			c.byPayment[e.RefID] = append(c.byPayment[e.RefID], e)
		case e.RefKind == "" && e.Key != "":
			c.byRef[keyEffect(e.Key)] = append(c.byRef[keyEffect(e.Key)], e)
		}
		if e.Kind == "capture" {
			c.byHold[e.HoldID] = append(c.byHold[e.HoldID], e)
		}
		if e.Key != "" {
			c.byKey[e.Key] = append(c.byKey[e.Key], e)
		}
	}
	c.holdByRef, c.holdByKey, c.holdByID = map[string][]HoldDoc{}, map[string][]HoldDoc{}, map[string]HoldDoc{}
	for _, h := range c.s.Holds {
		c.holdByID[h.ID] = h
		switch {
		case h.RefKind == RefKind:
			c.holdByRef[h.RefID] = append(c.holdByRef[h.RefID], h)
		case h.RefKind == "" && h.Key != "":
			c.holdByRef[keyEffect(h.Key)] = append(c.holdByRef[keyEffect(h.Key)], h)
		}
		if h.Key != "" {
			c.holdByKey[h.Key] = append(c.holdByKey[h.Key], h)
		}
	}
	c.payments = map[string]PaymentDoc{}
	for _, p := range c.s.Payments {
		c.payments[p.ID] = p
	}

	c.groups, c.refs, c.holdOps, c.payOps = map[string][]Op{}, map[string]bool{}, map[string][]Op{}, map[string][]Op{}
	for _, o := range ops {
		switch o.Kind {
		case OpAdd, OpDeduct, OpTransfer, OpComposite, OpReserve, OpCapture:
			eff := effectOf(o)
			c.groups[eff] = append(c.groups[eff], o)
			c.refs[eff] = true
		case OpPayCreate:
			c.creates = append(c.creates, o)
		case OpComplete, OpFail, OpRefund:
			c.payOps[o.Payment] = append(c.payOps[o.Payment], o)
		}
		if (o.Kind == OpCapture || o.Kind == OpRelease) && o.Hold != "" {
			c.holdOps[o.Hold] = append(c.holdOps[o.Hold], o)
		}
	}
}

// accounts checks every account's stored position against a recount of
// its entries and open holds.
func (c *checker) accounts() {
	bal := map[string]int64{}
	overflow := map[string]bool{}
	for _, e := range c.entries {
		sum, over := add64(bal[e.Account], e.Amount)
		bal[e.Account] = sum
		overflow[e.Account] = overflow[e.Account] || over
	}
	held := map[string]int64{}
	for _, h := range c.s.Holds {
		if h.Status == "open" {
			held[h.Account] += h.Amount
		}
	}
	c.rc = Recount{Entries: int64(len(c.entries)), Bad: map[string]bool{}, Repeated: c.repeated}
	seen := map[string]bool{}
	for _, a := range c.s.Accounts {
		if a.noAccount() {
			// Left by the fence of a credit whose outcome was resolved:
			// entries or holds of it are of a missing account.
			continue
		}
		c.rc.Accounts++
		seen[a.ID] = true
		bad := func(inv, format string, args ...any) {
			c.fail(inv, a.ID, "account %s: "+format, append([]any{a.ID}, args...)...)
			c.rc.Bad[a.ID] = true
		}
		if overflow[a.ID] {
			bad(InvBalance, "the sum of its entries overflows int64")
		} else if a.Balance != bal[a.ID] {
			bad(InvBalance, "balance %d, its entries sum to %d", a.Balance, bal[a.ID])
		}
		if a.Held != held[a.ID] {
			bad(InvHeld, "held %d, its open holds sum to %d", a.Held, held[a.ID])
		}
		if want, overflow := add64(a.Balance, negate(a.Held)); overflow || a.Available != want {
			bad(InvAvailable, "available %d, balance − held is %d", a.Available, want)
		}
		if a.Available < 0 || a.Balance < 0 || a.Held < 0 {
			bad(InvAvailable, "negative position: balance %d, held %d, available %d", a.Balance, a.Held, a.Available)
		}
	}
	for _, id := range sortedKeys(bal) {
		if !seen[id] {
			c.fail(InvBalance, id, "entries summing to %d belong to account %s, which does not exist", bal[id], id)
			c.rc.Bad[id] = true
		}
	}
	for _, id := range sortedKeys(held) {
		if !seen[id] {
			c.fail(InvHeld, id, "open holds of %d belong to account %s, which does not exist", held[id], id)
			c.rc.Bad[id] = true
		}
	}
}

// effectOf names what marks o's entries or holds: its ref, or (through
// the HTTP API, which sets no ref) the key the ledger stores.
func effectOf(o Op) string {
	if o.Ref == "" && o.LedgerKey != "" {
		return keyEffect(o.LedgerKey)
	}
	return o.Ref
}

func keyEffect(key string) string { return "key:" + key }

// want is one entry an operation should write.
type want struct {
	account string
	amount  int64
	kind    string
}

func shape(o Op) []want {
	switch o.Kind {
	case OpAdd:
		return []want{{o.Account, o.Amount, "credit"}}
	case OpDeduct:
		return []want{{o.Account, -o.Amount, "debit"}}
	case OpTransfer:
		return []want{{o.Account, -o.Amount, "transfer_out"}, {o.To, o.Amount, "transfer_in"}}
	case OpComposite:
		return []want{{o.Account, -o.Amount, "debit"}, {o.To, o.Amount, "credit"}}
	case OpCapture:
		return []want{{"", -o.Amount, "capture"}}
	}
	return nil
}

// effects checks each operation (with its repeats) against what of it is
// in the ledger: all of it once, or nothing, as its outcome says.
func (c *checker) effects() {
	for _, ref := range sortedKeys(c.groups) {
		g := c.groups[ref]
		first := g[0]
		var n, full int
		var found []string
		if first.Kind == OpReserve {
			hs := c.holdByRef[ref]
			n, full = len(hs), 1
			for _, h := range hs {
				found = append(found, h.ID)
				if h.Account != first.Account || h.Amount != first.Amount {
					c.failOps(InvAppliedOnce, h.Account, g, "hold %s of %s is %d on %s, asked %d on %s", h.ID, ref, h.Amount, h.Account, first.Amount, first.Account)
				}
			}
		} else {
			es := c.byRef[ref]
			ws := shape(first)
			n, full = len(es), len(ws)
			for _, e := range es {
				found = append(found, e.ID)
				if !slices.ContainsFunc(ws, func(w want) bool {
					return (w.account == "" || w.account == e.Account) && w.amount == e.Amount && w.kind == e.Kind
				}) {
					c.failOps(InvAppliedOnce, e.Account, g, "entry %s of %s is %s %d on %s, which %s does not write", e.ID, ref, e.Kind, e.Amount, e.Account, first.Kind)
				}
				if first.Kind == OpCapture && e.HoldID != first.Hold {
					c.failOps(InvAppliedOnce, e.Account, g, "capture entry %s of %s names hold %s, not %s", e.ID, ref, e.HoldID, first.Hold)
				}
			}
		}
		var applied, notApplied, settled []Op
		for _, o := range g {
			if !c.settled(o) {
				continue
			}
			settled = append(settled, o)
			switch {
			case o.Outcome == Applied:
				applied = append(applied, o)
			case o.Outcome.NotApplied():
				notApplied = append(notApplied, o)
			}
		}
		account := first.Account
		switch {
		case n > full:
			c.failOps(InvAppliedOnce, account, g, "%s %s is in the ledger %d times over (%s)", first.Kind, ref, n, strings.Join(found, " "))
		case n > 0 && n < full:
			c.failOps(InvUnknown, account, g, "%s %s is in the ledger partially: %d of its %d entries (%s)", first.Kind, ref, n, full, strings.Join(found, " "))
		case len(applied) > 0 && n == 0:
			c.failOps(InvAppliedOnce, account, applied, "%s %s was reported applied but is not in the ledger", first.Kind, ref)
		case n > 0 && len(settled) == len(g) && len(notApplied) == len(g):
			c.failOps(InvNotApplied, account, g, "%s %s was reported not applied (%s) but is in the ledger (%s)", first.Kind, ref, firstErr(g), strings.Join(found, " "))
		}
		for _, o := range applied {
			switch {
			case o.Entry != "" && n > 0 && !slices.Contains(found, o.Entry):
				c.failOps(InvAppliedOnce, account, []Op{o}, "%s %s returned entry %s, the ledger holds %s", o.Kind, ref, o.Entry, strings.Join(found, " "))
			case o.Kind == OpReserve && o.Hold != "" && n > 0 && !slices.Contains(found, o.Hold):
				c.failOps(InvAppliedOnce, account, []Op{o}, "reserve %s returned hold %s, the ledger holds %s", ref, o.Hold, strings.Join(found, " "))
			}
		}
	}
}

// keys checks that each idempotency key has at most one effect.
func (c *checker) keys() {
	for _, k := range sortedKeys(c.byKey) {
		if strings.HasPrefix(k, "payment:") {
			continue // the payments check counts these
		}
		refs := map[string]bool{}
		var ids []string
		for _, e := range c.byKey[k] {
			refs[e.RefKind+"/"+e.RefID] = true
			ids = append(ids, e.ID)
		}
		for _, h := range c.holdByKey[k] {
			refs[h.RefKind+"/"+h.RefID] = true
			ids = append(ids, h.ID)
		}
		if len(refs) > 1 {
			c.fail(InvKeyOneEffect, "", "key %s has %d effects: %s (refs %s)", k, len(refs), strings.Join(ids, " "), strings.Join(sortedKeys(refs), " "))
		}
	}
	for _, k := range sortedKeys(c.holdByKey) {
		if len(c.holdByKey[k]) > 1 && len(c.byKey[k]) == 0 {
			c.fail(InvKeyOneEffect, "", "key %s made %d holds", k, len(c.holdByKey[k]))
		}
	}
}

// explained checks that every entry and hold was written by an operation
// of the history (or by a payment).
func (c *checker) explained() {
	for _, id := range sortedKeys(c.entries) {
		e := c.entries[id]
		switch {
		case e.RefKind == RefKind:
			if !c.refs[e.RefID] {
				c.fail(InvExplained, e.Account, "entry %s (%s %d) names ref %s, which no operation used", e.ID, e.Kind, e.Amount, e.RefID)
			}
		case e.RefKind == "" && e.Key != "" && c.refs[keyEffect(e.Key)]:
		case e.RefKind == "payment":
			if _, ok := c.payments[e.RefID]; !ok {
				c.fail(InvExplained, e.Account, "entry %s (%s %d) names payment %s, which does not exist", e.ID, e.Kind, e.Amount, e.RefID)
			}
		default:
			c.fail(InvExplained, e.Account, "entry %s (%s %d on %s) has no reference to an operation", e.ID, e.Kind, e.Amount, e.Account)
		}
	}
	for _, h := range c.s.Holds {
		byRef := h.RefKind == RefKind && c.refs[h.RefID]
		byKey := h.RefKind == "" && h.Key != "" && c.refs[keyEffect(h.Key)]
		if !byRef && !byKey {
			c.fail(InvExplained, h.Account, "hold %s (%d on %s) was made by no operation", h.ID, h.Amount, h.Account)
		}
	}
}

// holds checks each hold's state against its capture entry and against the
// captures and releases reported on it.
func (c *checker) holds() {
	for _, h := range c.s.Holds {
		caps := c.byHold[h.ID]
		switch h.Status {
		case "captured":
			if len(caps) != 1 {
				c.fail(InvHoldState, h.Account, "hold %s is captured with %d capture entries", h.ID, len(caps))
				break
			}
			if e := caps[0]; e.Amount != -h.Captured || e.ID != h.EntryID || e.Account != h.Account {
				c.fail(InvHoldState, h.Account, "hold %s captured %d (entry %s) but its capture entry %s is %d on %s", h.ID, h.Captured, h.EntryID, e.ID, e.Amount, e.Account)
			}
			if h.Captured > h.Amount || h.Captured <= 0 {
				c.fail(InvHoldState, h.Account, "hold %s of %d captured %d", h.ID, h.Amount, h.Captured)
			}
		case "open", "released", "expired":
			if len(caps) > 0 {
				c.fail(InvHoldState, h.Account, "hold %s is %s but has %d capture entries", h.ID, h.Status, len(caps))
			}
		default:
			c.fail(InvHoldState, h.Account, "hold %s has status %q", h.ID, h.Status)
		}
	}
	for _, id := range sortedKeys(c.byHold) {
		if _, ok := c.holdByID[id]; !ok {
			c.fail(InvHoldState, "", "capture entries name hold %s, which does not exist", id)
		}
	}
	for _, id := range sortedKeys(c.holdOps) {
		h, ok := c.holdByID[id]
		ops := c.holdOps[id]
		var releases, releasesDone, otherRelease []Op
		for _, o := range ops {
			if o.Kind != OpRelease {
				continue
			}
			releases = append(releases, o)
			if c.settled(o) && o.Outcome == Applied {
				releasesDone = append(releasesDone, o)
			}
			if !c.settled(o) || !o.Outcome.NotApplied() {
				otherRelease = append(otherRelease, o)
			}
		}
		if !ok {
			continue // the hold was never made: every op on it must have failed, which effects() sees
		}
		if len(releasesDone) > 0 && h.Status != "released" && h.Status != "expired" {
			c.failOps(InvHoldState, h.Account, releasesDone, "hold %s was reported released but is %s", id, h.Status)
		}
		if h.Status == "released" && len(releases) > 0 && len(otherRelease) == 0 {
			c.failOps(InvNotApplied, h.Account, releases, "every release of hold %s was reported not applied (%s), but it is released", id, firstErr(releases))
		}
	}
}

// payments checks that each payment is credited once when completed and
// debited once when refunded, and that transitions were reported truly.
func (c *checker) checkPayments() {
	byRef := map[string]PaymentDoc{}
	for _, p := range c.s.Payments {
		if p.Provider == Provider {
			byRef[p.ProviderRef] = p
		}
	}
	// A create and its repeats (with its key, through -http) share the
	// provider reference: one of them may create the payment, so "not
	// created" binds only when every one of them said so.
	groups := map[string][]Op{}
	for _, o := range c.creates {
		groups[o.Ref] = append(groups[o.Ref], o)
	}
	for _, ref := range sortedKeys(groups) {
		g := groups[ref]
		p, ok := byRef[ref]
		allNot := true
		for _, o := range g {
			switch {
			case c.settled(o) && o.Outcome == Applied && !ok:
				c.failOps(InvAppliedOnce, o.Account, []Op{o}, "payment %s was reported created but does not exist", o.Ref)
			case c.settled(o) && o.Outcome == Applied && o.Payment != p.ID:
				c.failOps(InvAppliedOnce, o.Account, []Op{o}, "payment %s was reported created as %s but is %s", o.Ref, o.Payment, p.ID)
			}
			if !c.settled(o) || !o.Outcome.NotApplied() {
				allNot = false
			}
		}
		if allNot && ok {
			c.failOps(InvNotApplied, g[0].Account, g, "payment %s was reported not created (%s) but exists as %s", ref, firstErr(g), p.ID)
		}
	}
	for _, id := range sortedKeys(c.payments) {
		p := c.payments[id]
		var credit, refund []EntryDoc
		for _, e := range c.byPayment[id] {
			switch {
			case e.Amount > 0:
				credit = append(credit, e)
			default:
				refund = append(refund, e)
			}
		}
		wantCredit, wantRefund := 0, 0
		switch p.Status {
		case "completed":
			wantCredit = 1
		case "refunded":
			wantCredit, wantRefund = 1, 1
		case "pending", "failed":
		default:
			c.fail(InvPaymentOnce, p.Account, "payment %s has status %q", id, p.Status)
		}
		if len(credit) != wantCredit {
			c.fail(InvPaymentOnce, p.Account, "payment %s is %s and was credited %d times (%s)", id, p.Status, len(credit), entryIDs(credit))
		}
		if len(refund) != wantRefund {
			c.fail(InvPaymentOnce, p.Account, "payment %s is %s and was debited for refund %d times (%s)", id, p.Status, len(refund), entryIDs(refund))
		}
		for _, e := range credit {
			if e.Amount != p.Credits || e.Account != p.Account || (p.CreditEntryID != "" && e.ID != p.CreditEntryID) {
				c.fail(InvPaymentOnce, p.Account, "payment %s of %d credits to %s (entry %s) was credited %d to %s by entry %s", id, p.Credits, p.Account, p.CreditEntryID, e.Amount, e.Account, e.ID)
			}
		}
		for _, e := range refund {
			if e.Amount != -p.Credits || e.Account != p.Account || (p.RefundEntryID != "" && e.ID != p.RefundEntryID) {
				c.fail(InvPaymentOnce, p.Account, "payment %s of %d credits from %s (entry %s) was refunded %d from %s by entry %s", id, p.Credits, p.Account, p.RefundEntryID, e.Amount, e.Account, e.ID)
			}
		}
		c.transitions(p)
	}
}

// transitions checks the completes, fails and refunds reported on p.
func (c *checker) transitions(p PaymentDoc) {
	ops := c.payOps[p.ID]
	reached := map[Kind]bool{
		OpComplete: p.Status == "completed" || p.Status == "refunded",
		OpRefund:   p.Status == "refunded",
		OpFail:     p.Status != "pending",
	}
	for _, kind := range []Kind{OpComplete, OpFail, OpRefund} {
		var all, applied []Op
		allNot := true
		for _, o := range ops {
			if o.Kind != kind {
				continue
			}
			all = append(all, o)
			if !c.settled(o) || !o.Outcome.NotApplied() {
				allNot = false
			}
			if c.settled(o) && o.Outcome == Applied {
				applied = append(applied, o)
			}
		}
		if len(all) == 0 {
			continue
		}
		if len(applied) > 0 && !reached[kind] {
			c.failOps(InvAppliedOnce, p.Account, applied, "%s of payment %s was reported applied but it is %s", kind, p.ID, p.Status)
		}
		// A fail is undone by a later complete, so only the state it
		// leads to directly counts as its effect.
		done := reached[kind]
		if kind == OpFail {
			done = p.Status == "failed"
		}
		if allNot && done {
			c.failOps(InvNotApplied, p.Account, all, "every %s of payment %s was reported not applied (%s) but it is %s", kind, p.ID, firstErr(all), p.Status)
		}
	}
}

func firstErr(ops []Op) string {
	for _, o := range ops {
		if o.Err != "" {
			return fmt.Sprintf("%.200s", o.Err)
		}
	}
	return ""
}

func entryIDs(es []EntryDoc) string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return strings.Join(ids, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func add64(a, b int64) (int64, bool) {
	r := a + b
	return r, (a > 0 && b > 0 && r < 0) || (a < 0 && b < 0 && r >= 0)
}

func negate(v int64) int64 {
	if v == math.MinInt64 {
		return math.MaxInt64
	}
	return -v
}
