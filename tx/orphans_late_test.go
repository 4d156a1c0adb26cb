package tx_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// cutFirstStatement runs a transaction whose first statement (a
// findAndModify of document 1) the connection breaks under, as under a
// process that dies: the process's kills fail too, so nothing of it
// reaches the server after the statement. It returns the statement as
// the driver sent it, lsid and txnNumber included, for deliverLate.
func (p *dyingProcess) cutFirstStatement(t *testing.T) bson.Raw {
	t.Helper()
	p.warm(t, 1)
	p.mon.reset()
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"findAndModify", "killSessions"}}, {Key: "closeConnection", Value: true}}},
	})
	require.Error(t, p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		return p.docs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "cut"}}}}).Err()
	}))
	updates := p.mon.started("findAndModify")
	require.Len(t, updates, 1)
	require.True(t, updates[0].StartTxn)
	return updates[0].Body
}

// awaitReaped waits until the next process reaped the dead one: only one
// lease (its own) is left, and no recorded session.
func awaitReaped(t *testing.T, sessions *mongo.Collection) {
	t.Helper()
	require.Eventually(t, func() bool {
		leases, err := sessions.CountDocuments(context.Background(), bson.D{{Key: "kind", Value: "lease"}})
		require.NoError(t, err)
		recorded, err := sessions.CountDocuments(context.Background(), bson.D{{Key: "kind", Value: "session"}})
		require.NoError(t, err)
		return leases == 1 && recorded == 0
	}, 10*time.Second, 10*time.Millisecond, "the next process reaps the dead one")
}

// A process dies while its attempt's first statement is still on its way
// (the connection broke under it: the server had not read it). The next
// process of its instance kills its recorded sessions at start; the
// statement, reaching the server after that kill, starts the transaction
// and takes document 1. Nothing of the dead process will ever end that
// transaction: the next process must, well before the server's
// transaction lifetime limit (an hour here). (The dying process's own
// reaper never kills: its killSessions fail, as a dead process sends
// none.) Finding tx-orphan-reap-does-not-fence.
func TestALateFirstStatementOfAReapedProcessHoldsNothing(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	docs := seedDocs(t, db)
	sessions := db.Collection("sessions")

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.runner.Close(ctx) // its kills fail: it is the dead process
	})
	late := a.cutFirstStatement(t)
	// The process dies here; the next one of its instance starts and
	// kills its recorded sessions.
	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	awaitReaped(t, sessions)

	reply := deliverLate(t, uri, late)
	t.Logf("the late statement got %v", reply)
	require.NoError(t, writeDoc1(b, docs, 5*time.Second), "the dead process's late statement holds the document")
	open, _ := serverStatus(t, client)
	assert.Zero(t, open, "a transaction is open on the server")
}

// The re-kills end with their window: a late statement that reaches the
// server after it starts a transaction that stays open (here until the
// server's lifetime limit, an hour), as without re-kills. The window
// bounds what a reap costs the server.
func TestTheRekillsOfAReapEndAfterTheirWindow(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	const every, window = 50 * time.Millisecond, 500 * time.Millisecond
	tx.SetRekillSchedule(t, every, window)
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.runner.Close(ctx)
	})
	late := a.cutFirstStatement(t)
	reapingRunner(t, client, db, "pod-0", time.Hour)
	awaitReaped(t, db.Collection("sessions"))

	time.Sleep(window + 10*every)
	reply := deliverLate(t, uri, late)
	require.Equal(t, 1.0, reply.Lookup("ok").AsFloat64(), "the late statement starts its transaction: %v", reply)
	time.Sleep(10 * every)
	open, _ := serverStatus(t, client)
	assert.Equal(t, int64(1), open, "a re-kill after the window ended the late transaction")
}

// Close stops the re-kills at once, a kill the database holds up
// included, and their goroutine ends.
func TestCloseStopsTheRekillsOfAReap(t *testing.T) {
	if testenv.Real() {
		t.Skip("blocks killSessions on the server")
	}
	tx.SetRekillSchedule(t, 50*time.Millisecond, time.Hour)
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	a := newDyingProcess(t, uri, db, tx.WithMaxAttempts(1))
	a.cutFirstStatement(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.Error(t, a.runner.Close(ctx)) // the dead process: its kills fail
	before := registryGoroutines()        // of tests before this one, if one failed
	b := reapingRunner(t, client, db, "pod-0", time.Hour)
	awaitReaped(t, db.Collection("sessions"))
	// Every killSessions is held 5 s: the re-kill now in flight is.
	testenv.FailCommand(t, client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 5000}}},
	})
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	require.NoError(t, b.Close(context.Background()))
	assert.Less(t, time.Since(start), time.Second, "Close waited for the re-kill")
	// The client's and the server's goroutines come and go with their
	// connections; the registry's must be gone (goleak in TestMain checks
	// again once the test's clients and server are).
	assert.LessOrEqual(t, registryGoroutines(), before, "a goroutine of the registry is left after Close:\n%s", goroutines())
}

// registryGoroutines counts the goroutines running in an orphan registry.
func registryGoroutines() int {
	n := 0
	for _, g := range strings.Split(goroutines(), "\n\n") {
		if strings.Contains(g, "tx.(*registry)") {
			n++
		}
	}
	return n
}

// goroutines returns the stacks of all goroutines.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
