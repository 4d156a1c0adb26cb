package tx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// attack27 matrix: Close against a database that does not answer, a ctx
// that ends during each step, many sessions, and concurrent Runs.

// turnOff turns the failCommand fail point off, trying again after a
// cleared pool.
func turnOff(t *testing.T, e *env) {
	t.Helper()
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.Eventually(t, func() bool {
		return e.client.Database("admin").RunCommand(context.Background(), off).Err() == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// closeWithin calls Close with a ctx of d and requires it back within d
// and a margin, returning its error.
func closeWithin(t *testing.T, e *env, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := e.runner.Close(ctx)
	took := time.Since(start)
	t.Logf("Close (ctx %v) took %v: %v", d, took, err)
	// The margin: a fence's abort after a refused kill is bounded by 1 s.
	assert.Less(t, took, d+1500*time.Millisecond, "Close outlived its ctx")
	return err
}

// A database that never answers Close's kill (held past Close's ctx),
// with and without the rest of the reaper's commands held too: Close
// returns within its ctx, and says it failed. A later Close, once the
// database answers, kills and fences, and leaves nothing open.
func TestAttack27CloseAgainstADatabaseThatNeverAnswers(t *testing.T) {
	tests := []struct {
		name string
		give bson.A // the commands held
	}{
		{name: "the kill is held", give: bson.A{"killSessions"}},
		{name: "every command of the reaper is held", give: bson.A{"killSessions", "find", "abortTransaction", "endSessions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithMaxAttempts(1))
			seedDoc(t, e)
			e.failCommand(t, -1, bson.D{
				{Key: "failCommands", Value: tt.give},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 4000},
			})
			reapCut(t, e)
			require.Eventually(t, func() bool { return len(e.mon.started("killSessions")) > 0 }, 10*time.Second, time.Millisecond)
			require.Error(t, closeWithin(t, e, time.Second), "Close killed nothing and reported nil")
			turnOff(t, e)
			require.NoError(t, closeWithin(t, e, 10*time.Second))
			writeAfter(t, e)
		})
	}
}

// Close's ctx ends during each of its steps: its kill (held, or broken
// again and again), its fence's read, its second kill. It returns within
// its ctx and reports the failure; a later Close finishes the work, and
// every cut fence read delivered late is refused.
func TestAttack27CloseWhoseCtxEndsDuringEachStep(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	tests := []struct {
		name  string
		times int // the Close's fail point: times (-1: always)
		give  bson.D
	}{
		{
			name:  "during the kill, held",
			times: -1,
			give:  bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000}},
		},
		{
			name:  "during the kill, broken again and again",
			times: -1,
			give:  bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "closeConnection", Value: true}},
		},
		{
			name:  "during the fence's read",
			times: -1,
			give:  bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000}},
		},
		{
			name:  "during the fence's read, broken again and again",
			times: -1,
			give:  bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}},
		},
		{
			name:  "during the second kill",
			times: 2, // the first kill passes... the fail point counts from it
			give:  bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithMaxAttempts(1))
			seedDoc(t, e)
			// The reaper's fence read is held: Close comes while it is in
			// flight.
			e.failCommand(t, 1, bson.D{
				{Key: "failCommands", Value: bson.A{"find"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1500},
			})
			reapCut(t, e)
			waitFenceSent(t, e)
			e.failCommand(t, tt.times, tt.give)
			require.Error(t, closeWithin(t, e, time.Second), "Close's ctx ended before its work was done: %s", e.mon.dump("find", "killSessions"))
			turnOff(t, e)
			require.NoError(t, closeWithin(t, e, 10*time.Second))
			time.Sleep(3 * time.Second) // the held commands are done
			deliverCutFences(t, e)
			open, _ := serverStatus(t, e.client)
			assert.Zero(t, open, "a transaction open after Close reported nil")
			writeAfter(t, e)
		})
	}
}

// More sessions than fences run at a time (fenceParallel, 16) wait in
// the reaper at Close: Close kills and fences them all.
func TestAttack27CloseWithManySessionsLeavesNothingOpen(t *testing.T) {
	const n = 40
	e := newEnv(t, tx.WithMaxAttempts(1))
	for i := 0; i < n; i++ {
		_, err := e.coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: i}})
		require.NoError(t, err)
	}
	// The reaper's first kill is held: the sessions are pending at Close.
	e.failCommand(t, 1, bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 3000}})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			assert.Error(t, e.runner.Run(ctx, func(ctx context.Context) error {
				if _, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "cut"}}}}); err != nil {
					return err
				}
				cancel()
				return nil
			}))
		}()
	}
	wg.Wait()
	require.NoError(t, closeWithin(t, e, 20*time.Second))
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.coll.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
	require.NoError(t, err, "a document is still held")
}

// Runs on many goroutines on one hot document, half of them cut by their
// ctx (their sessions wait in the reaper), then Close called from several
// goroutines while the Runs go on (no longer cut: a transaction cut after
// Close is left to the server, as documented): every Close returns within
// its ctx, and once the Runs stopped nothing is open and the document
// takes a write.
func TestAttack27ConcurrentClosesDuringRunsOnAHotDocument(t *testing.T) {
	const workers = 16
	e := newEnv(t, tx.WithMaxAttempts(3))
	seedDoc(t, e)
	stop := make(chan struct{})
	var noCut atomic.Bool
	var runs, cut atomic.Int64
	var wg, uncut sync.WaitGroup
	uncut.Add(workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signalled := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				if noCut.Load() && !signalled {
					signalled = true
					uncut.Done() // no cut Run of this worker is in flight
				}
				ctx, cancel := context.WithCancel(context.Background())
				if !signalled && rand.IntN(2) == 0 {
					time.AfterFunc(time.Duration(rand.IntN(3000))*time.Microsecond, cancel)
					cut.Add(1)
				}
				_ = e.runner.Run(ctx, func(ctx context.Context) error {
					_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
					return err
				}, tx.WithName(fmt.Sprintf("hot-%d", w)))
				cancel()
				runs.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	noCut.Store(true)
	uncut.Wait()
	var cwg sync.WaitGroup
	for c := 0; c < 4; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			_ = closeWithin(t, e, time.Duration(200+c*300)*time.Millisecond)
		}()
	}
	cwg.Wait()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("runs %d (cut %d)", runs.Load(), cut.Load())
	require.NoError(t, closeWithin(t, e, 10*time.Second))
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "a transaction open after Close reported nil")
	writeAfter(t, e)
}
