package chaos

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Outcome is what an operation's caller was told.
type Outcome uint8

// The outcomes of an operation.
const (
	// Pending: the operation has not returned (yet).
	Pending Outcome = iota
	// Applied: it returned success.
	Applied
	// Rejected: it returned a business error; nothing was written.
	Rejected
	// Failed: it returned any other error, which says it did not happen.
	Failed
	// Unknown: its outcome was reported unknown, or could not be reported.
	Unknown
)

var outcomeNames = [...]string{Pending: "pending", Applied: "applied", Rejected: "rejected", Failed: "failed", Unknown: "unknown"}

// String returns the outcome's name.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// MarshalText implements encoding.TextMarshaler.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("chaos: unknown outcome %q", b)
}

// NotApplied reports whether the caller was told nothing happened.
func (o Outcome) NotApplied() bool { return o == Rejected || o == Failed }

// Kind names an operation of the workload.
type Kind string

// The operations of the workload.
const (
	OpAdd       Kind = "add"
	OpDeduct    Kind = "deduct"
	OpTransfer  Kind = "transfer"
	OpComposite Kind = "composite" // a deduct and an add in one caller transaction
	OpReserve   Kind = "reserve"
	OpCapture   Kind = "capture"
	OpRelease   Kind = "release"
	OpPayCreate Kind = "pay.create"
	OpComplete  Kind = "pay.complete"
	OpFail      Kind = "pay.fail"
	OpRefund    Kind = "pay.refund"
	OpBalance   Kind = "balance"
)

// Op is one operation of the history: what was asked, and what its caller
// was told.
type Op struct {
	ID      string `json:"id"`
	Worker  int    `json:"worker"`
	Kind    Kind   `json:"kind"`
	Account string `json:"account,omitempty"`
	To      string `json:"to,omitempty"`
	Amount  int64  `json:"amount,omitempty"`
	// Key is the idempotency key, if any.
	Key string `json:"key,omitempty"`
	// Ref marks the operation's entries and holds (Ref("chaos", Ref)).
	// A repeat carries the ref of the operation it repeats.
	Ref string `json:"ref,omitempty"`
	// Repeat is the id of the operation this one repeats with the same key
	// and parameters; Conflict marks a reuse of Repeat's key with other
	// parameters.
	Repeat   string `json:"repeat,omitempty"`
	Conflict bool   `json:"conflict,omitempty"`
	// Hold and Payment name the hold or payment acted on, or created.
	Hold    string `json:"hold,omitempty"`
	Payment string `json:"payment,omitempty"`
	// Entry is the id of the entry an applied add, deduct or capture
	// returned.
	Entry string `json:"entry,omitempty"`
	// TTL is a reserve's hold duration in nanoseconds; ByRef, when set,
	// completes the payment by its provider reference, as a webhook does.
	TTL   int64  `json:"ttl,omitempty"`
	ByRef string `json:"byRef,omitempty"`
	// Through the HTTP API: LedgerKey is the key the ledger stores (its
	// entries and holds carry it instead of a ref), PayRef the payment's
	// provider reference, Event a webhook's event id.
	LedgerKey string `json:"ledgerKey,omitempty"`
	PayRef    string `json:"payRef,omitempty"`
	Event     string `json:"event,omitempty"`

	Outcome Outcome   `json:"outcome"`
	Err     string    `json:"err,omitempty"`
	Fault   string    `json:"fault,omitempty"` // the caller-side fault it met (cancel, deadline)
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	// CtxEnd is when the caller's context ended (its deadline passed or
	// it was cancelled) before the operation returned.
	CtxEnd time.Time `json:"ctxEnd,omitzero"`
}

func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", o.ID, o.Kind)
	if o.Account != "" {
		fmt.Fprintf(&b, " %s", o.Account)
	}
	if o.To != "" {
		fmt.Fprintf(&b, "→%s", o.To)
	}
	if o.Amount != 0 {
		fmt.Fprintf(&b, " %d", o.Amount)
	}
	for _, kv := range [][2]string{{"key", o.Key}, {"ref", o.Ref}, {"repeat", o.Repeat}, {"hold", o.Hold}, {"payment", o.Payment}, {"fault", o.Fault}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if o.Conflict {
		b.WriteString(" conflict")
	}
	fmt.Fprintf(&b, " → %s", o.Outcome)
	if o.Err != "" {
		fmt.Fprintf(&b, ": %.300s", o.Err)
	}
	return b.String()
}

// History is the record of every operation and injected fault, safe for
// concurrent use.
type History struct {
	mu     sync.Mutex
	ops    []*Op
	byID   map[string]*Op
	faults []Fault
}

// Fault is one injected fault.
type Fault struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Desc string    `json:"desc"`
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{byID: map[string]*Op{}} }

// Begin records op as started.
func (h *History) Begin(op *Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	h.byID[op.ID] = op
}

// Finish records done, op as it ended, in place of op.
func (h *History) Finish(op *Op, done Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*op = done
}

// AddFault records an injected fault.
func (h *History) AddFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, f)
}

// Ops returns a copy of every operation finished before t (all when t is
// zero), as they are now.
func (h *History) Ops(before time.Time) []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, 0, len(h.ops))
	for _, op := range h.ops {
		if !before.IsZero() && (op.Outcome == Pending || !op.End.Before(before)) {
			continue
		}
		out = append(out, *op)
	}
	return out
}

// Len returns how many operations have begun.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Faults returns a copy of the injected faults.
func (h *History) Faults() []Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Fault(nil), h.faults...)
}

// Around returns the operations that ran within d of op id (that is, of
// its start and end), and the faults injected in that time, for a report.
func (h *History) Around(ids []string, d time.Duration, limit int) ([]Op, []Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var lo, hi time.Time
	for _, id := range ids {
		op := h.byID[id]
		if op == nil {
			continue
		}
		end := op.End
		if end.IsZero() {
			end = time.Now()
		}
		if lo.IsZero() || op.Start.Before(lo) {
			lo = op.Start
		}
		if end.After(hi) {
			hi = end
		}
	}
	if lo.IsZero() {
		return nil, nil
	}
	lo, hi = lo.Add(-d), hi.Add(d)
	var ops []Op
	for _, op := range h.ops {
		end := op.End
		if end.IsZero() {
			end = time.Now()
		}
		if end.Before(lo) || op.Start.After(hi) {
			continue
		}
		ops = append(ops, *op)
	}
	if len(ops) > limit {
		// Keep the operations named first, then the closest in time.
		sort.SliceStable(ops, func(i, j int) bool { return named(ids, ops[i].ID) && !named(ids, ops[j].ID) })
		ops = ops[:limit]
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Start.Before(ops[j].Start) })
	}
	var fs []Fault
	for _, f := range h.faults {
		if !f.At.Before(lo) && !f.At.After(hi) {
			fs = append(fs, f)
		}
	}
	return ops, fs
}

func named(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
