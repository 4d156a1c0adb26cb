package tx_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// Many attempts cut at once (their connections break under their first
// statements), and the database is then slow (a read waits 1.5 s): their sessions reach the reaper together,
// and the fences of one batch share one 5 s bound. The sessions the bound
// left unfenced are marked fenced all the same and never fenced; their
// late first statements (delivered by the test once the reaper is done)
// hold their documents, with no runner transaction after them, until the
// lifetime limit.
func TestManyCutAttemptsAreAllFencedPastTheFenceBound(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers statements on raw connections")
	}
	const n = 40
	e := newEnv(t, tx.WithMaxAttempts(1))
	var seed []any
	for i := 0; i < n; i++ {
		seed = append(seed, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "seed"}})
	}
	_, err := e.coll.InsertMany(context.Background(), seed)
	require.NoError(t, err)
	// The cut attempts' first statements break their connections (they
	// never run), then the database is slow: reads (the fences') wait
	// 1.5 s.
	// (The reaper's kills fail too until then, so that no fence runs
	// before the database is slow.)
	e.failCommand(t, -1, bson.D{{Key: "failCommands", Value: bson.A{"update", "killSessions"}}, {Key: "closeConnection", Value: true}})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.Error(t, e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "cut"}}}})
				return err
			}))
		}()
	}
	wg.Wait()
	e.failCommand(t, -1, bson.D{
		{Key: "failCommands", Value: bson.A{"find"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1500},
	})
	time.Sleep(12 * time.Second) // the reaper is done
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.NoError(t, e.client.Database("admin").RunCommand(context.Background(), off).Err())
	fences := 0
	for _, c := range e.mon.started("find") {
		if c.StartTxn {
			fences++
		}
	}
	// The cut statements reach the server now, after the reaper is done
	// (a statement already on the server is killed with its session).
	wrote := 0
	for _, u := range e.mon.started("update") {
		reply := deliverLate(t, e.uri, u.Body)
		if reply.Lookup("ok").Double() == 1 && reply.Lookup("n").AsInt64() == 1 {
			wrote++
		}
	}
	held := 0
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
		cancel()
		if err != nil {
			held++
		}
	}
	open, _ := serverStatus(t, e.client)
	t.Logf("%d sessions cut, %d fences sent, %d late statements wrote, %d documents held, %d transactions open", n, fences, wrote, held, open)
	assert.Zero(t, held, "documents held by late first statements")
	assert.Zero(t, open, "transactions open on the server")
}
