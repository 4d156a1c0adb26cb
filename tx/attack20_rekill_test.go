package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// liveProcess is a process of instance pod-1 with a lease of a second,
// which another process will take for dead while it lives.
type liveProcess struct {
	client *mongo.Client
	docs   *mongo.Collection
	runner *tx.Runner
}

func newLiveProcess(t *testing.T, uri string, db *mongo.Database, opts ...tx.Option) *liveProcess {
	t.Helper()
	client := testenv.Connect(t, uri)
	cdb := client.Database(db.Name())
	opts = append([]tx.Option{tx.WithOrphanReaping(tx.OrphanReaping{Collection: cdb.Collection("sessions"), Instance: "pod-1", Lease: time.Second})}, opts...)
	p := &liveProcess{client: client, docs: cdb.Collection("docs"), runner: tx.NewRunner(client, opts...)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.runner.Close(ctx)
	})
	return p
}

// takenForDead has the process miss its lease (its renewals fail for a
// while, as in a long GC pause or a stalled node) until the process
// sweeping with reaper reaped it, then lets it renew again: it was alive
// all along.
func (p *liveProcess) takenForDead(t *testing.T, db *mongo.Database) {
	t.Helper()
	// Its pooled sessions are recorded: transactions held them all at
	// once, so the driver hands out one of them next.
	(&dyingProcess{runner: p.runner, docs: p.docs}).warm(t, 8)
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}}},
	})
	awaitReaped(t, db.Collection("sessions"))
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.NoError(t, p.client.Database("admin").RunCommand(context.Background(), off).Err())
	// It renews again: its lease is back.
	require.Eventually(t, func() bool {
		n, err := db.Collection("sessions").CountDocuments(context.Background(), bson.D{{Key: "kind", Value: "lease"}})
		require.NoError(t, err)
		return n == 2
	}, 10*time.Second, 10*time.Millisecond, "the process taken for dead renews its lease")
}

// A process taken for dead while it lived (it missed its lease) is reaped;
// the reaping process then kills the reaped sessions again every second
// for 30 s. The live process's driver keeps handing those sessions out. Its
// next transaction, whose insert the database holds 2.5 s, is on one of
// them: a re-kill interrupts the held insert. docs/transactions.md says
// such transactions "fail with a transient error and are retried";
// killSessions interrupts a running command with Interrupted (11601),
// which is not a TransientTransactionError, so the runner gives up on the
// first attempt and the caller is told its transaction failed for good,
// although the process is alive, owns the session and recorded it again.
func TestAttack20ALiveProcessTakenForDeadHasItsTransactionsRetriedThroughTheRekills(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	p := newLiveProcess(t, uri, db)
	reapingRunner(t, client, db, "pod-0", time.Second)
	p.takenForDead(t, db)

	// The database holds the insert 1.5 s (it is slow, as under load):
	// a re-kill comes in the meantime.
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
	})
	err := p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}})
		return err
	})
	require.NoError(t, err, "the live process's transaction failed for good")
	n, err := db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "live"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// The re-kills' promise (docs/transactions.md): a late statement that
// reaches the server within the window holds its documents until the next
// re-kill at most. The last re-kill comes up to one interval before the
// window ends, and the tick after it finds the window over and forgets the
// sessions without killing them: a late statement that arrives between the
// two, within the window, is never killed and holds its document until the
// server's transaction lifetime limit (an hour here; 60 s by default, with
// the production schedule a statement in the last second of the 30).
func TestAttack20ALateStatementInTheLastIntervalOfTheWindowIsKilled(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	// Re-kills at about 600 ms after the reap; the window ends at 1 s.
	const every, window = 600 * time.Millisecond, time.Second
	tx.SetRekillSchedule(t, every, window)
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.runner.Close(ctx)
	})
	late := a.cutFirstStatement(t)
	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	awaitReaped(t, db.Collection("sessions"))
	reaped := time.Now()

	// After the re-kill of about 600 ms, within the window.
	time.Sleep(800 * time.Millisecond)
	reply := deliverLate(t, uri, late)
	require.Equal(t, 1.0, reply.Lookup("ok").AsFloat64(), "the late statement starts its transaction: %v", reply)
	require.Less(t, time.Since(reaped), window, "the late statement came within the window")

	require.NoError(t, writeDoc1(b, docs, every+time.Second), "the late statement, within the window, holds the document past the next re-kill")
	open, _ := serverStatus(t, client)
	assert.Zero(t, open, "a transaction is open on the server")
}

// A process taken for dead while it lived sends a commit that applies but
// whose reply carries a write concern error: its outcome is unknown, and
// the runner sends the commit again. The database holds the second send
// (it is slow, which is what the write concern error said), and a re-kill
// of the session interrupts it: Interrupted. The runner takes that answer
// for "nothing was applied" and reports a plain failure (the
// AfterCompletion hooks are told RolledBack), while the first send
// committed. The caller, told its transaction failed, runs it again: the
// work is applied twice. The only truthful answers are nil (the commit is
// resent until its outcome is learned) or ErrCommitUnknown.
func TestAttack20ARekillOfAResentCommitIsNotReportedAsNothingApplied(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	var p *liveProcess
	resent := false
	obs := observerFunc(func(e tx.Event) {
		if e.Kind != tx.EventRetry || !e.CommitOnly || resent {
			return
		}
		resent = true
		// The database holds the second send 2.5 s: a re-kill comes.
		testenv.FailCommand(t, p.client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
		})
	})
	p = newLiveProcess(t, uri, db, tx.WithObserver(obs))
	reapingRunner(t, client, db, "pod-0", time.Second)
	p.takenForDead(t, db)

	// The first send applies; its reply has a write concern error.
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "writeConcernError", Value: wce(codeWriteConcernFailed)}}},
	})
	var outcome tx.Outcome
	err := p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		tx.AfterCompletion(ctx, func(_ context.Context, o tx.Outcome) { outcome = o })
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "paid"}})
		return err
	})
	require.True(t, resent, "the commit was sent again")
	n, cerr := db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "paid"}})
	require.NoError(t, cerr)
	require.Equal(t, int64(1), n, "the first send committed")
	if err != nil {
		assert.ErrorIs(t, err, tx.ErrCommitUnknown, "the transaction committed; it is reported as a plain failure")
	}
	assert.NotEqual(t, tx.RolledBack, outcome, "the hooks are told the committed transaction rolled back")
}
