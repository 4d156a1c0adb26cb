package tx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// A live process taken for dead (it missed its lease) may start a
// transaction before its renewal finds its lease gone: it still holds its
// sessions for recorded, and the reaping process re-kills them. A
// transaction that starts when the last renewal that succeeded was sent a
// lease ago or more renews first (here it waits for the renewal that the
// database holds), learns that it was reaped, and records its session
// again, which the re-kills spare: its insert, which the database holds
// across re-kills, is not interrupted (finding
// tx-rekill-fails-live-process-transactions).
func TestALiveProcessThatStartsATransactionBeforeItsRenewalFindsItWasReapedIsSpared(t *testing.T) {
	uri, client := orphanServer(t)
	db := testenv.NewDB(t, client)
	seedDocs(t, db)

	p := newLiveProcess(t, uri, db)
	reapingRunner(t, client, db, "pod-0", time.Second)
	(&dyingProcess{runner: p.runner, docs: p.docs}).warm(t, 8)
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "alwaysOn"},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}}},
	})
	awaitReaped(t, db.Collection("sessions"))
	// Its next renewal is held 1.5 s (the process is still stalled).
	testenv.FailCommand(t, p.client, bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
		{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1500}}},
	})
	time.Sleep(500 * time.Millisecond)

	err := p.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		// The database holds the insert 2.5 s: re-kills come meanwhile.
		testenv.FailCommand(t, p.client, bson.D{
			{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: bson.D{{Key: "times", Value: 1}}},
			{Key: "data", Value: bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2500}}},
		})
		_, err := p.docs.InsertOne(ctx, bson.D{{Key: "_id", Value: "live"}})
		return err
	}, tx.WithMaxAttempts(1))
	require.NoError(t, err, "a re-kill interrupted the live process's transaction")
	n, err := db.Collection("docs").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "live"}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}
