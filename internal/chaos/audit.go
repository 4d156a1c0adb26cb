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

// DefaultSettle is how long the final audit waits for the ledger to stop
// changing: longer than the transaction lifetime of a real MongoDB (60 s),
// after which no write of a killed process can still apply.
const DefaultSettle = 90 * time.Second

// settlePause is the pause between two rounds of the final audit.
const settlePause = 250 * time.Millisecond

// Audit takes a snapshot and checks it against the history and against
// Reconcile. An error means the check could not run (a continuous check
// just tries again later).
//
// With final set, the run is over: Reconcile's counts must then equal the
// recount's exactly. The run is not quiet, though: a command that a killed
// worker (or an operation whose context ended) had sent, held by a
// blockConnection fail point or still on the wire, may apply after it. So
// the final audit reads the ledger again after Reconcile and holds
// Reconcile to the recount only if no entry or account appeared or
// vanished between the two snapshots (entries are never deleted, so
// Reconcile, in between, saw the same ones); otherwise it checks the newer
// ledger in another round. A ledger that still changes after Settle is
// reported (InvSettles), with the entries that moved.
func (a *Auditor) Audit(ctx context.Context, final bool) error {
	settle := a.Settle
	if settle <= 0 {
		settle = DefaultSettle
	}
	start := time.Now()
	for {
		snap, rc, err := a.check(ctx)
		if err != nil || a.Credits == nil {
			return err
		}
		if a.beforeReconcile != nil {
			a.beforeReconcile()
		}
		rep, err := a.Credits.Reconcile(ctx)
		if err != nil {
			return err
		}
		a.checks.Add(1)
		if !final {
			a.reportAll(CompareReconcile(rep, rc, false))
			return nil
		}
		again, err := Read(ctx, a.DB, a.Colls)
		if err != nil {
			return err
		}
		moved := ledgerMoves(snap, again)
		if moved == "" {
			a.reportAll(CompareReconcile(rep, rc, true))
			return nil
		}
		// The accounts Reconcile flags must still be those the recount
		// flags: a consistent ledger has none at any instant.
		a.reportAll(CompareReconcile(rep, rc, false))
		if waited := time.Since(start); waited >= settle {
			a.Report(Violation{Invariant: InvSettles, Detail: fmt.Sprintf(
				"the ledger still changed %s after the run ended: %s", waited.Round(time.Second), moved)})
			return nil
		}
		if a.Out != nil {
			fmt.Fprintf(a.Out, "txchaos: the final check read a ledger that was still changing (Reconcile counted %d entries, the recount %d; then %s); reading it again\n",
				rep.Entries, rc.Entries, moved)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePause):
		}
	}
}

// check reads a snapshot and checks it against the history. Operations
// settled before the snapshot bind it; the history is copied after it, so
// that every operation that could have written to it is known.
func (a *Auditor) check(ctx context.Context) (Snapshot, Recount, error) {
	cutoff := time.Now()
	snap, err := Read(ctx, a.DB, a.Colls)
	if err != nil {
		return snap, Recount{}, err
	}
	vs, rc := Check(snap, a.History.Ops(time.Time{}), cutoff)
	a.checks.Add(1)
	a.reportAll(vs)
	return snap, rc, nil
}

func (a *Auditor) reportAll(vs []Violation) {
	for _, v := range vs {
		a.Report(v)
	}
}

// ledgerMoves describes the entries (in the collection or embedded) and
// accounts that are in one snapshot and not the other: what a count of
// each may differ by. It is empty when they hold the same ones.
func ledgerMoves(old, cur Snapshot) string {
	ids := func(s Snapshot) (map[string]EntryDoc, map[string]bool) {
		es, accs := map[string]EntryDoc{}, map[string]bool{}
		for _, e := range s.Entries {
			es[e.ID] = e
		}
		for _, acc := range s.Accounts {
			if !acc.noAccount() { // one that becomes an account counts
				accs[acc.ID] = true
			}
			for _, e := range acc.Pending {
				es[e.ID] = e
			}
		}
		return es, accs
	}
	oldE, oldA := ids(old)
	curE, curA := ids(cur)
	var parts []string
	list := func(what string, from, other map[string]EntryDoc) {
		var out []string
		for _, id := range sortedKeys(from) {
			if _, ok := other[id]; !ok {
				e := from[id]
				out = append(out, fmt.Sprintf("%s (%s %d on %s, ref %s/%s)", id, e.Kind, e.Amount, e.Account, e.RefKind, e.RefID))
			}
		}
		if len(out) > 0 {
			parts = append(parts, fmt.Sprintf("%d entries %s: %s", len(out), what, strings.Join(out, ", ")))
		}
	}
	list("appeared", curE, oldE)
	list("vanished", oldE, curE)
	for _, kv := range []struct {
		what        string
		from, other map[string]bool
	}{{"appeared", curA, oldA}, {"vanished", oldA, curA}} {
		var out []string
		for _, id := range sortedKeys(kv.from) {
			if !kv.other[id] {
				out = append(out, id)
			}
		}
		if len(out) > 0 {
			parts = append(parts, fmt.Sprintf("accounts %s: %s", kv.what, strings.Join(out, " ")))
		}
	}
	return strings.Join(parts, "; ")
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
		why := "; no entry of the snapshot is embedded more than once"
		if len(rc.Repeated) > 0 {
			why = "; embedded more than once, so counted again by a sum of the collection and each account's uncopied entries: " + strings.Join(rc.Repeated, " ")
		}
		vs = append(vs, Violation{Invariant: InvReconcile,
			Detail: fmt.Sprintf("Reconcile counted %d accounts and %d entries; the recount %d and %d", rep.Accounts, rep.Entries, rc.Accounts, rc.Entries) + why})
	}
	return vs
}
