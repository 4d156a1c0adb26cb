package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/modules/credits"
	"github.com/txkit/txkit/tx"
)

// run runs a short workload without faults and returns the report, the
// checker's database and an auditor over the run's history.
func run(t *testing.T) (*Report, *mongo.Database, *History) {
	t.Helper()
	return runLeaving(t, false)
}

// runLeaving is run; with leave, the workload's client leaves a
// transaction open on the server through the run.
func runLeaving(t *testing.T, leave bool) (*Report, *mongo.Database, *History) {
	t.Helper()
	uri := testenv.URI(t)
	client := testenv.Connect(t, uri, options.Client().SetAppName("chaos-test-workload").SetMonitor(Monitor()).SetHeartbeatInterval(500*time.Millisecond))
	checker := testenv.Connect(t, uri)
	db := testenv.NewDB(t, checker)
	var out bytes.Buffer
	cfg := Config{
		Seed: 7, Duration: 1500 * time.Millisecond, Workers: 3, Accounts: 6, Hot: 1,
		CheckEvery: 300 * time.Millisecond, MaxOpen: 700 * time.Millisecond, Client: client, Checker: checker,
		AppName: "chaos-test-workload", DB: db.Name(), Out: &out,
	}
	if leave {
		_, abort := openTxn(t, client, db.Name())
		defer abort()
	}
	rep, h, err := run1(context.Background(), cfg)
	require.NoError(t, err)
	return rep, db, h
}

func run1(ctx context.Context, cfg Config) (*Report, *History, error) {
	var h *History
	testHook = func(x *History) { h = x }
	defer func() { testHook = nil }()
	rep, err := Run(ctx, cfg)
	return rep, h, err
}

func TestRunWithoutFaultsFindsNothing(t *testing.T) {
	rep, _, _ := run(t)
	assert.Empty(t, rep.Violations)
	assert.Empty(t, rep.Errors)
	assert.Greater(t, rep.Ops, 6, "the workload ran beyond funding the 6 accounts")
	assert.Greater(t, rep.Checks, int64(2))
	assert.Greater(t, rep.OpenReads, int64(2), "open transactions were watched")
	var out bytes.Buffer
	rep.Print(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Regexp(t, regexp.MustCompile(`^txchaos: \d+ ops, 0 faults, \d+ checks, 0 violations$`), lines[len(lines)-1])
}

// TestRunReportsATransactionLeftOpen: a transaction of the workload's
// client left open on the server through the run breaks InvNotLeftOpen.
func TestRunReportsATransactionLeftOpen(t *testing.T) {
	rep, _, _ := runLeaving(t, true)
	var left []Violation
	for _, v := range rep.Violations {
		if v.Invariant == InvNotLeftOpen {
			left = append(left, v)
		}
	}
	require.Len(t, left, 1, "%v", rep.Violations)
	assert.Contains(t, left[0].Detail, `app "chaos-test-workload"`)
	assert.Len(t, rep.Violations, 1, "nothing else broke")
}

// TestAuditFindsATamperedLedger breaks the stored ledger of a clean run in
// several ways with the plain driver; the audit must name each breakage,
// and Reconcile must agree with the recount.
func TestAuditFindsATamperedLedger(t *testing.T) {
	_, db, h := run(t)
	ctx := context.Background()
	audit := func() []string {
		a := &Auditor{DB: db, Colls: DefaultCollections, Credits: credits.NewService(db, tx.NewRunner(db.Client())), History: h}
		require.NoError(t, a.Audit(ctx, true))
		return invariants(a.Violations())
	}
	require.Empty(t, audit(), "the clean run")

	accounts := db.Collection(DefaultCollections.Accounts)
	entries := db.Collection(DefaultCollections.Entries)
	require.NoError(t, NewServices(db).Credits.Flush(ctx)) // every entry in the collection

	t.Run("a balance moved without an entry", func(t *testing.T) {
		_, err := accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: AccountName(0)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: 1}, {Key: "available", Value: 1}}}})
		require.NoError(t, err)
		assert.Equal(t, []string{InvBalance}, audit())
		_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: AccountName(0)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "balance", Value: -1}, {Key: "available", Value: -1}}}})
		require.NoError(t, err)
	})
	t.Run("an applied entry lost, and one duplicated", func(t *testing.T) {
		// The credit of an Add: an operation of one entry (a composite
		// also writes a credit, next to its debit).
		var e bson.D
		cur, err := entries.Find(ctx, bson.D{{Key: "refKind", Value: RefKind}, {Key: "kind", Value: "credit"}})
		require.NoError(t, err)
		for cur.Next(ctx) {
			var c bson.D
			require.NoError(t, cur.Decode(&c))
			var ref any
			for _, f := range c {
				if f.Key == "refId" {
					ref = f.Value
				}
			}
			if n, err := entries.CountDocuments(ctx, bson.D{{Key: "refId", Value: ref}}); err == nil && n == 1 {
				e = c
				break
			}
		}
		require.NoError(t, cur.Close(ctx))
		require.NotEmpty(t, e, "an Add's credit")
		_, err = entries.DeleteOne(ctx, bson.D{{Key: "_id", Value: e[0].Value}})
		require.NoError(t, err)
		got := audit()
		assert.Contains(t, got, InvAppliedOnce)
		assert.Contains(t, got, InvBalance)

		e[0].Value = "copy-1"
		_, err = entries.InsertOne(ctx, e)
		require.NoError(t, err)
		e[0].Value = "copy-2"
		_, err = entries.InsertOne(ctx, e)
		require.NoError(t, err)
		got = audit()
		assert.Contains(t, got, InvAppliedOnce)
		assert.Contains(t, got, InvBalance)
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		give error
		sent bool
		want Outcome
	}{
		{"success is applied", nil, false, Applied},
		{"a business error is rejected", fmt.Errorf("x: %w", credits.ErrInsufficientCredits), true, Rejected},
		{"a cancellation before any commit is failed", fmt.Errorf("x: %w", context.Canceled), false, Failed},
		{"a cancellation after a commit was sent is unknown", fmt.Errorf("x: %w", context.Canceled), true, Unknown},
		{"a deadline after a write was sent is unknown", context.DeadlineExceeded, true, Unknown},
		{"any other error is failed", errors.New("boom"), true, Failed},
		{"a commit of unknown outcome is unknown", fmt.Errorf("x: %w", tx.ErrCommitUnknown), true, Unknown},
		{"a write of unknown outcome is unknown", fmt.Errorf("x: %w: %w", credits.ErrOutcomeUnknown, errors.New("wce")), false, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Classify(tt.give, tt.sent))
		})
	}
}

func TestOpLogMakesKilledOperationsUnknown(t *testing.T) {
	path := t.TempDir() + "/log.jsonl"
	l, err := CreateOpLog(path)
	require.NoError(t, err)
	a := &Op{ID: "a", Kind: OpAdd, Account: "x", Amount: 1, Ref: "a"}
	b := &Op{ID: "b", Kind: OpDeduct, Account: "x", Amount: 1, Ref: "b"}
	l.Begin(a)
	l.Begin(b)
	done := *a
	done.Outcome, done.Entry = Applied, "e1"
	l.Finish(a, done)
	_, _ = l.f.WriteString(`{"e":{"id":"b","outc`) // cut by the kill
	require.NoError(t, l.Close())

	h := NewHistory()
	r, err := os.Open(path)
	require.NoError(t, err)
	defer r.Close()
	n, err := ReadOpLog(r, h, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	ops := h.Ops(time.Time{})
	require.Len(t, ops, 2)
	assert.Equal(t, Applied, ops[0].Outcome)
	assert.Equal(t, "e1", ops[0].Entry)
	assert.Equal(t, Unknown, ops[1].Outcome)
}

// TestSameSeedSameWorkload checks that the seed fixes the workload: one
// worker without faults asks for the same operations, in the same order,
// in two runs.
func TestSameSeedSameWorkload(t *testing.T) {
	uri := testenv.URI(t)
	shape := func(seed uint64) map[string]string {
		client := testenv.Connect(t, uri, options.Client().SetAppName("chaos-test-seed").SetMonitor(Monitor()).SetHeartbeatInterval(500*time.Millisecond))
		checker := testenv.Connect(t, uri)
		db := testenv.NewDB(t, checker)
		cfg := Config{
			Seed: seed, Duration: 2 * time.Second, Workers: 1, Accounts: 5, Hot: 1,
			CheckEvery: time.Hour, Client: client, Checker: checker, AppName: "chaos-test-seed", DB: db.Name(),
		}
		_, h, err := run1(context.Background(), cfg)
		require.NoError(t, err)
		out := map[string]string{} // by id: a duplicated webhook's two deliveries begin in either order
		for _, o := range h.Ops(time.Time{}) {
			out[o.ID] = fmt.Sprintf("%s %s %s %d %s", o.Kind, o.Account, o.To, o.Amount, o.Key)
		}
		return out
	}
	common := func(x, y map[string]string) (same, differ int) {
		for id, v := range x {
			if w, ok := y[id]; ok {
				if v == w {
					same++
				} else {
					differ++
				}
			}
		}
		return same, differ
	}
	a, b, c := shape(11), shape(11), shape(12)
	same, differ := common(a, b)
	assert.Greater(t, same, 5, "beyond funding the 5 accounts")
	assert.Zero(t, differ, "the same seed asked for other operations")
	_, differ = common(a, c)
	assert.Positive(t, differ, "another seed, another workload")
}
