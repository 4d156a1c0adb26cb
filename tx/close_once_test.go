package tx_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// dyingProcess is a process of instance pod-0 that the test later
// abandons, as a process that dies: its client (recording its commands)
// and its runner with orphan reaping.
type dyingProcess struct {
	client *mongo.Client
	mon    *monitor
	docs   *mongo.Collection
	runner *tx.Runner
}

func newDyingProcess(t *testing.T, uri string, db *mongo.Database, opts ...tx.Option) *dyingProcess {
	t.Helper()
	mon := &monitor{}
	client := testenv.Connect(t, uri, options.Client().SetMonitor(mon.commandMonitor()))
	cdb := client.Database(db.Name())
	opts = append([]tx.Option{tx.WithOrphanReaping(tx.OrphanReaping{Collection: cdb.Collection("sessions"), Instance: "pod-0", Lease: time.Hour})}, opts...)
	p := &dyingProcess{client: client, mon: mon, docs: cdb.Collection("docs"), runner: tx.NewRunner(client, opts...)}
	// A test that fails before its process "dies" (Close) must not leave
	// the registry's goroutines to the tests after it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.runner.Close(ctx)
	})
	// The registry's first sweep (a find on the registry) is done, so that
	// the fail points the test arms hit only its transactions.
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(mon.named("find"), func(c command) bool { return c.Succeeded })
	}, 10*time.Second, 10*time.Millisecond)
	return p
}

// warm records n sessions in the registry (n transactions at once), so
// that the next transactions find theirs recorded and send no update to
// the registry.
func (p *dyingProcess) warm(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	in := make(chan struct{}, n)
	all := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				if err := p.docs.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Err(); err != nil {
					return err
				}
				in <- struct{}{} //txcheck:ignore no fail point is armed while warming: the callback runs once
				<-all
				return nil
			}))
		}()
	}
	for i := 0; i < n; i++ {
		<-in
	}
	close(all)
	wg.Wait()
}

func (p *dyingProcess) failOff(t *testing.T) {
	t.Helper()
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.NoError(t, p.client.Database("admin").RunCommand(context.Background(), off).Err())
}

func seedDocs(t *testing.T, db *mongo.Database) *mongo.Collection {
	t.Helper()
	docs := db.Collection("docs")
	_, err := docs.InsertMany(context.Background(), []any{
		bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "seed"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "v", Value: "seed"}},
	})
	require.NoError(t, err)
	return docs
}

// Two Close calls at once (an Fx OnStop and a deferred Close, a signal
// handler and main): the second finds the reaper closed and goes on to
// the registry as if the reaper's last kill had succeeded, while the
// first is still sending it. It removes the lease and the records of a
// transaction left open that the kill then fails to kill, and reports
// success. The process dies; the next process of its instance has
// nothing to kill, and the document stays held until the lifetime limit.
func TestConcurrentClosesKeepTheRecordsOfASessionTheLastKillMissed(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
	a.warm(t, 1)
	// The commit is answered MaxTimeMSExpired after 1 s without committing:
	// the transaction stays open, its session goes to the reaper, whose
	// kills fail (after 1 s) until the fail point is off.
	testenv.FailCommand(t, a.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"commitTransaction", "killSessions"}},
			{Key: "errorCode", Value: codeMaxTimeMSExpired},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1000},
		}},
	})
	err := a.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := a.docs.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}})
		return err
	})
	require.ErrorIs(t, err, tx.ErrCommitUnknown)

	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs[i] = a.runner.Close(ctx)
		}()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("Close: %v; Close: %v", errs[0], errs[1])
	a.failOff(t)
	// The process dies here.

	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	require.NoError(t, writeDoc1(b, docs, 5*time.Second),
		"the transaction left open is held after the process died: a concurrent Close removed its records (Close reported %v and %v)", errs[0], errs[1])
}

// A session whose fence failed waits in the reaper's spare list: only the
// runner's next transaction on it would supersede a late first statement
// of its cut attempt. Close ends the spare sessions and, as nothing is
// pending, removes the process's records. The late statement's
// transaction (started before Close, or after it) then holds its document
// and, after the process dies, the next process of its instance has

// Close's last kill fails (the database refuses it for a moment): Close
// reports it. A caller that calls Close again once the database answers
// is told nil, yet nothing was killed: the first Close dropped the
// session, and the transaction left open holds its document until the
// lifetime limit.
func TestASecondCloseReportsWhatTheFirstCouldNotKill(t *testing.T) {
	e := newEnv(t, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
	e.commitFaults.Store(true) // the transaction the test leaves open
	seedDoc(t, e)
	e.failCommand(t, -1, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction", "killSessions"}},
		{Key: "errorCode", Value: codeMaxTimeMSExpired},
	})
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}})
		return err
	})
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.Error(t, e.runner.Close(ctx), "the kill failed")
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.NoError(t, e.client.Database("admin").RunCommand(context.Background(), off).Err())

	if err := e.runner.Close(ctx); err == nil {
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer wcancel()
		_, err := e.coll.UpdateOne(wctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
		assert.NoError(t, err, "the second Close reported nil, and the transaction left open still holds the document")
	}
}

// The reaper's first kill is held by the database past its 5 s bound; the
// reaper kills again, fences, and hands the session to the next
// transaction. The held kill, when the database runs it, must not kill
// A transaction running when Close is called, which ends during Close
// leaving its transaction open (its ctx ended during its first statement,
// which the server then runs), finds the reaper closed; Close, still busy
// with its last kill, then sees no transaction running and removes the
// lease and the records. After the process dies the next process of its
// instance has nothing to kill: the document is held until the lifetime
// limit.
func TestATransactionEndingDuringCloseKeepsTheRecords(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	a.warm(t, 2)
	a.mon.reset()
	// The transactions' statements (findAndModify) and the kills wait
	// 1.5 s, then run.
	testenv.FailCommand(t, a.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{
			{Key: "failCommands", Value: bson.A{"findAndModify", "killSessions"}},
			{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1500},
		}},
	})
	cut := func(id int, after time.Duration) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer time.AfterFunc(after, cancel).Stop()
		return a.runner.Run(ctx, func(ctx context.Context) error {
			if err := a.docs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "cut"}}}}).Err(); err != nil {
				return ctx.Err()
			}
			return nil
		})
	}
	// An earlier transaction left its session to the reaper: Close's last
	// kill (and its fence's kill) take 3 s.
	require.Error(t, cut(2, 200*time.Millisecond))

	done := make(chan error, 1)
	go func() { done <- cut(1, 600*time.Millisecond) }()
	require.Eventually(t, func() bool { return len(a.mon.started("findAndModify")) >= 2 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	closeErr := a.runner.Close(ctx)
	t.Logf("Close took %v: %v", time.Since(start), closeErr)
	require.Error(t, <-done)

	time.Sleep(1500 * time.Millisecond) // the cut statements have run
	a.failOff(t)
	// The process dies here.

	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	require.NoError(t, writeDoc1(b, docs, 5*time.Second),
		"the transaction running at Close holds its document after the process died: Close (which reported %v) removed its records", closeErr)
}

// attack18Storm runs workers transactions on document 1 for d, each
// writing a document of its own too; about half of them have their ctx
// cancelled 0–30 ms after they start. It returns what each reported, by
// A session whose fence failed waits in the reaper's spare list: only the
// runner's next transaction on it would supersede a late first statement
// of its cut attempt. Close ends the spare sessions and, as nothing is
// pending, removes the process's records. The late statement's
// transaction (started before Close, or after it) then holds its document
// and, after the process dies, the next process of its instance has
// nothing to kill.
func TestCloseKeepsTheRecordsOfASpareSessionWhoseFenceFailed(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	a.warm(t, 1)
	a.mon.reset()
	// The first statement (a findAndModify: the registry's own writes are
	// updates), then the fence's read, break their connection.
	testenv.FailCommand(t, a.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 2}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"findAndModify", "find"}}, {Key: "closeConnection", Value: true}}},
	})
	err := a.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		return a.docs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}}).Err()
	})
	require.Error(t, err)
	updates := a.mon.started("findAndModify")
	require.Len(t, updates, 1)
	require.True(t, updates[0].StartTxn)
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range a.mon.named("killSessions") {
			if c.Succeeded {
				n++
			}
		}
		return n >= 2
		// A kill that meets the driver still blind after the fence's
		// closed connection fails at its 5 s bound and is sent again.
	}, 30*time.Second, 10*time.Millisecond, "the reaper kills and fences the session: %s", a.mon.dump("killSessions", "find", "abortTransaction", "findAndModify"))
	reply := deliverLate(t, uri, updates[0].Body)
	require.EqualValues(t, 1, reply.Lookup("ok").Double(), "the late statement started the transaction and wrote: %v", reply)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := a.runner.Close(ctx)
	// The process dies here.

	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	require.NoError(t, writeDoc1(b, docs, 5*time.Second),
		"the late statement's transaction is held after the process died: Close (which reported %v) ended its spare session and removed its records", closeErr)
}
