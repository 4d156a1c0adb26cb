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
}
