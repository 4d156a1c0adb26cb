package chaos

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/modules/credits"
)

// Auditor checks the invariants of a run: on snapshots of the ledger
// against the history, by comparing [credits.Service.Reconcile] with its
// own recount, and on the balances that the workload reads.
type Auditor struct {
	DB      *mongo.Database // read with the plain driver, never faulted
	Colls   Collections
	Credits *credits.Service // a service on DB, for Reconcile
	History *History
	Seed    uint64
	// Out receives each new violation as it is found, with the seed, the
	// operations around it and the faults injected meanwhile.
	Out io.Writer
	// Settle bounds how long the final audit waits for the ledger to stop
	// changing (0: DefaultSettle).
	Settle time.Duration

	// beforeReconcile, in tests, writes between a snapshot and Reconcile.
	beforeReconcile func()

	checks atomic.Int64
	mu     sync.Mutex
	seen   map[string]bool
	found  []Violation
}

// Checks returns how many invariant checks ran.
func (a *Auditor) Checks() int64 { return a.checks.Load() }

// Violations returns the distinct violations found so far.
func (a *Auditor) Violations() []Violation {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.found)
}

// Report records v unless it was found before, and prints it.
func (a *Auditor) Report(v Violation) {
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	k := v.Invariant + "|" + v.Detail
	if a.seen[k] {
		a.mu.Unlock()
		return
	}
	a.seen[k] = true
	a.found = append(a.found, v)
	n := len(a.found)
	a.mu.Unlock()
	if a.Out == nil || n > 50 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nVIOLATION (seed %d): %s\n", a.Seed, v)
	if len(v.Ops) > 0 && a.History != nil {
		ops, faults := a.History.Around(v.Ops, 2*time.Second, 30)
		b.WriteString("  operations around it:\n")
		for _, o := range ops {
			mark := " "
			if slices.Contains(v.Ops, o.ID) {
				mark = "*"
			}
			fmt.Fprintf(&b, "  %s %s %s\n", mark, o.Start.Format("15:04:05.000"), o.String())
		}
		b.WriteString("  faults injected meanwhile:\n")
		for _, f := range faults {
			fmt.Fprintf(&b, "    %s %s %s\n", f.At.Format("15:04:05.000"), f.Kind, f.Desc)
		}
	}
	_, _ = io.WriteString(a.Out, b.String())
}

// CheckRead checks one balance read: available = balance − held ≥ 0.
func (a *Auditor) CheckRead(account string, balance, held, available int64) {
	a.checks.Add(1)
	if available != balance-held || available < 0 || held < 0 {
		a.Report(Violation{Invariant: InvRead, Account: account,
			Detail: fmt.Sprintf("Balance(%s) returned balance %d, held %d, available %d", account, balance, held, available)})
	}
}

// Audit takes a snapshot and checks it against the history and against
// Reconcile. With final set, the run is over and quiet: Reconcile's counts
// must then equal the recount's exactly. An error means the check could
// not run (a continuous check just tries again later).
func (a *Auditor) Audit(ctx context.Context, final bool) error {
	// Operations settled before the snapshot bind it; the history is
	// copied after it, so that every operation that could have written to
	// it is known.
	cutoff := time.Now()
	snap, err := Read(ctx, a.DB, a.Colls)
	if err != nil {
		return err
	}
	ops := a.History.Ops(time.Time{})
	vs, rc := Check(snap, ops, cutoff)
	a.checks.Add(1)
	for _, v := range vs {
		a.Report(v)
	}
	if a.Credits == nil {
		return nil
	}
	if a.beforeReconcile != nil {
		a.beforeReconcile()
	}
	rep, err := a.Credits.Reconcile(ctx)
	if err != nil {
		return err
	}
	a.checks.Add(1)
	for _, v := range CompareReconcile(rep, rc, final) {
		a.Report(v)
	}
	return nil
}

// CompareReconcile holds Reconcile's report against the checker's own
// recount: the accounts it finds wrong must be those the recount finds
// wrong; after the run (exact) it must also have counted the same.
func CompareReconcile(rep credits.Report, rc Recount, exact bool) []Violation {
	var vs []Violation
	flagged := map[string]bool{}
	for _, m := range rep.Mismatches {
		flagged[m.Account] = true
		if !rc.Bad[m.Account] {
			vs = append(vs, Violation{Invariant: InvReconcile, Account: m.Account,
				Detail: fmt.Sprintf("Reconcile reports %s of %s (stored %d, computed %d: %s); the recount finds it right", m.Field, m.Account, m.Stored, m.Computed, m.Detail)})
		}
	}
	for _, acc := range sortedKeys(rc.Bad) {
		if !flagged[acc] {
			vs = append(vs, Violation{Invariant: InvReconcile, Account: acc,
				Detail: fmt.Sprintf("the recount finds account %s wrong; Reconcile reports nothing", acc)})
		}
	}
	if exact && (rep.Accounts != rc.Accounts || rep.Entries != rc.Entries) {
		vs = append(vs, Violation{Invariant: InvReconcile,
			Detail: fmt.Sprintf("Reconcile counted %d accounts and %d entries; the recount %d and %d", rep.Accounts, rep.Entries, rc.Accounts, rc.Entries)})
	}
	return vs
}
