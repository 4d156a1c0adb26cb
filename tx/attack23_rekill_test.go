package tx_test

import (
	"context"
	"errors"
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

// A live process taken for dead starts a transaction while its lease may
// have lapsed, and the renewal that ada7ef1 sends first FAILS (the
// registry still refuses its writes: the stall is not over). record
// ignores the failure and, the session being in its cache, starts the
// transaction on a session that the reaping process re-kills: the
// transaction is interrupted midway. A transaction of a live process must
// either be spared (its session recorded again) or be refused before its
// first statement with the registry's error, never killed under it
// (attack23, finding tx-rekill-renewal-failure-starts-killable-transaction).
func TestAttack23ALiveProcessWhoseRenewalFailsAtTransactionStartIsNotKilledMidway(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	p := newLiveProcess(t, uri, db)
	reapingRunner(t, client, db, "pod-0", time.Second)
	(&dyingProcess{runner: p.runner, docs: p.docs}).warm(t, 8)
	// Its writes to the registry fail: it misses its lease and is reaped.
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}}},
	})
	awaitReaped(t, db.Collection("sessions"))

	var firstStatement bool
	err := p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		firstStatement = true
		// The database holds the insert 2.5 s: re-kills come meanwhile.
		testenv.FailCommand(t, p.client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
		})
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}})
		return err
	}, tx.WithMaxAttempts(1))
	n, cerr := db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "live"}})
	require.NoError(t, cerr)
	if err == nil {
		assert.Equal(t, int64(1), n, "reported committed")
		return
	}
	assert.Zero(t, n)
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		assert.NotEqual(t, int32(codeInterrupted), ce.Code,
			"a re-kill interrupted the live process's transaction midway (first statement sent: %v): %v", firstStatement, err)
	}
	// Refused before its first statement, with the renewal's error.
	assert.False(t, firstStatement, "the transaction started on a session that may be re-killed")
	assert.ErrorContains(t, err, "record the session for orphan reaping")
	assert.ErrorContains(t, err, "renew lease")
	assert.Equal(t, int32(2), ce.Code, "the registry's own error, wrapped")
}

// A live process taken for dead (its renewals fail: a stall) is reaped by
// another: the reap kills its sessions and schedules the re-kills, then its
// removal of the records fails (a transient error: the registry's writes
// fail for every process during the stall). The reap is abandoned, to be
// done again at the next sweep; the process is back first: its renewal
// lands on its lease, still there, so it keeps its cache and is never a
// lease late (it renews first only then), and the next sweep sees its beat
// move and spares it. Its records are those the reap read (same
// incarnation, same seq): the re-kills do not spare them, and kill the
// live process's transactions for the whole window (attack23, finding
// tx-rekill-abandoned-reap-kills-live-process).
func TestAttack23ALiveProcessWhoseReapWasAbandonedIsNotKilledByTheRekills(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)
	sessions := db.Collection("sessions")

	p := newLiveProcess(t, uri, db)
	mon := &monitor{}
	rc := testenv.Connect(t, uri, options.Client().SetMonitor(mon.commandMonitor()))
	reapingRunner(t, rc, rc.Database(db.Name()), "pod-0", time.Second)
	(&dyingProcess{runner: p.runner, docs: p.docs}).warm(t, 8)
	var before struct {
		Beat int64 `bson:"beat"`
	}
	lease := bson.D{{Key: "kind", Value: "lease"}, {Key: "instance", Value: "pod-1"}}
	require.NoError(t, sessions.FindOne(context.Background(), lease).Decode(&before))

	// The registry's writes fail, for every process.
	admin := client.Database("admin")
	require.NoError(t, admin.RunCommand(context.Background(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update", "delete"}}, {Key: "errorCode", Value: 2}}},
	}).Err())
	off := func() {
		require.NoError(t, admin.RunCommand(context.Background(), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err())
	}
	t.Cleanup(off)
	// pod-0 reaps pod-1: it kills its sessions; its removal of the records fails.
	require.Eventually(t, func() bool {
		killed := false
		for _, c := range mon.started("killSessions") {
			killed = killed || c.Succeeded
		}
		failedDelete := false
		for _, c := range mon.started("delete") {
			failedDelete = failedDelete || c.Failed
		}
		return killed && failedDelete
	}, 10*time.Second, 5*time.Millisecond, "pod-0 reaps pod-1")
	off()
	// pod-1 renews: its lease and its records are still there.
	require.Eventually(t, func() bool {
		var l struct {
			Beat int64 `bson:"beat"`
		}
		err := sessions.FindOne(context.Background(), lease).Decode(&l)
		return err == nil && l.Beat > before.Beat
	}, 5*time.Second, 2*time.Millisecond, "pod-1 renews its lease")
	n, err := sessions.CountDocuments(context.Background(), bson.D{{Key: "kind", Value: "session"}})
	require.NoError(t, err)
	require.EqualValues(t, 8, n, "the abandoned reap left pod-1's records")

	err = p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		// The database holds the insert 2.5 s: re-kills come meanwhile.
		testenv.FailCommand(t, p.client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
		})
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}})
		return err
	}, tx.WithMaxAttempts(1))
	require.NoError(t, err, "a re-kill interrupted the live process's transaction")
	n, err = db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "live"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// A live process taken for dead finds its lease gone, records its session
// again and starts a transaction on it, while a re-kill that read the
// registry before that record is on its way (the database is slow to run
// the killSessions: the process's stall and the reaper's slowness are one
// overloaded database). The re-kill reads the registry, then kills what it
// read as not recorded again: the kill lands on the live process's
// transaction (attack23, finding tx-rekill-stale-read-kills-rerecorded-session).
func TestAttack23ARekillThatReadTheRegistryBeforeTheRecordDoesNotKillTheLiveProcess(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)
	sessions := db.Collection("sessions")

	p := newLiveProcess(t, uri, db)
	mon := &monitor{}
	rc := testenv.Connect(t, uri, options.Client().SetMonitor(mon.commandMonitor()))
	reapingRunner(t, rc, rc.Database(db.Name()), "pod-0", time.Second)
	(&dyingProcess{runner: p.runner, docs: p.docs}).warm(t, 8)
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}}},
	})
	awaitReaped(t, sessions)
	// The process is back (its renewals succeed: it finds its lease gone);
	// the reaper's re-kills take 1.5 s to run.
	testenv.FailCommand(t, rc, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1500}}},
	})
	require.Eventually(t, func() bool {
		n, err := sessions.CountDocuments(context.Background(), bson.D{{Key: "kind", Value: "lease"}})
		require.NoError(t, err)
		return n == 2
	}, 5*time.Second, 5*time.Millisecond, "the process taken for dead renews its lease")
	// A re-kill reads the registry and sends its kill.
	mark := len(mon.started("killSessions"))
	require.Eventually(t, func() bool { return len(mon.started("killSessions")) > mark }, 5*time.Second, 2*time.Millisecond)

	err := p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		// The database holds the insert 2.5 s.
		testenv.FailCommand(t, p.client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
		})
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}})
		return err
	})
	require.NoError(t, err, "a re-kill interrupted the live process's transaction")
	n, err := db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "live"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}
