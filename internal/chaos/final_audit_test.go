package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// In crash mode a killed worker's command that a blockConnection fail
// point holds (or any write already on the wire) still applies after the
// kill, so the final audit is not quiet: a transfer of the last
// generation landed between the checker's snapshot and Reconcile's, which
// then counted its two entries more than the recount (txchaos -crash
// -seed 11, finding chaos-crash-final-count-mismatch). The final audit
// must compare Reconcile with a recount of the ledger as Reconcile saw it.
func TestFinalAuditIsNotFooledByALateWrite(t *testing.T) {
	_, db, h := run(t)
	ctx := context.Background()
	late := &Op{ID: "late-1", Kind: OpTransfer, Account: AccountName(0), To: AccountName(1), Amount: 1, Ref: "late-1", Start: time.Now()}
	h.Begin(late) // killed while it ran: its outcome is unknown
	svc := NewServices(db)
	a := &Auditor{DB: db, Colls: DefaultCollections, Credits: credits.NewService(db, tx.NewRunner(db.Client())), History: h}
	landed := false
	a.beforeReconcile = func() {
		if landed {
			return
		}
		landed = true
		require.NoError(t, (&Modules{Runner: svc.Runner, Credits: svc.Credits, Payments: svc.Payments}).Do(ctx, late))
	}
	require.NoError(t, a.Audit(ctx, true))
	require.True(t, landed)
	assert.Empty(t, a.Violations(), "the late transfer is unknown: in the ledger or not, nothing is wrong")
}

// A write that keeps landing after the run is itself worth reporting; the
// final audit names the entries that appeared, and still ends.
func TestFinalAuditReportsALedgerThatNeverSettles(t *testing.T) {
	_, db, h := run(t)
	ctx := context.Background()
	svc := NewServices(db)
	a := &Auditor{DB: db, Colls: DefaultCollections, Credits: credits.NewService(db, tx.NewRunner(db.Client())), History: h,
		Settle: time.Second}
	n := 0
	a.beforeReconcile = func() {
		n++
		op := &Op{ID: "late-" + AccountName(n), Kind: OpAdd, Account: AccountName(0), Amount: 1, Ref: "late-" + AccountName(n), Start: time.Now()}
		h.Begin(op)
		require.NoError(t, (&Modules{Runner: svc.Runner, Credits: svc.Credits, Payments: svc.Payments}).Do(ctx, op))
	}
	start := time.Now()
	require.NoError(t, a.Audit(ctx, true))
	assert.Less(t, time.Since(start), 30*time.Second)
	var found *Violation
	for _, v := range a.Violations() {
		if v.Invariant == InvSettles {
			found = &v
		}
	}
	require.NotNil(t, found, "violations: %v", a.Violations())
	assert.Contains(t, found.Detail, "late-acct-")
}

// When Reconcile and the recount read the same ledger and still count
// differently, the violation names the entries a count of the entries
// collection plus each account's uncopied embedded entries sees more than
// once: the recount counts each id once.
func TestCountMismatchNamesTheEntriesCountedTwice(t *testing.T) {
	s, ops := ledger()
	s.Accounts[1].Pending = append(s.Accounts[1].Pending, s.Accounts[1].Pending[0]) // e3 embedded twice
	_, rc := Check(s, ops, cutoff)
	vs := CompareReconcile(credits.Report{Accounts: rc.Accounts, Entries: rc.Entries + 1}, rc, true)
	require.Len(t, vs, 1)
	assert.True(t, strings.Contains(vs[0].Detail, "e3"), vs[0].Detail)
}
