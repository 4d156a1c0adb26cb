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

// Attack of 17c167d (Close fences again a session whose fence's read was
// cut, and kills again while the kill gets no answer): review attack27.

// reapCut runs a transaction that writes document 1 and whose scope's ctx
// then ends: its session goes to the reaper (kill, then fence).
func reapCut(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.Error(t, e.runner.Run(ctx, func(ctx context.Context) error {
		if _, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "cut"}}}}); err != nil {
			return err
		}
		cancel() // the scope ends: the attempt is reaped
		return nil
	}))
}

// fenceReads returns the fences' reads the client started (a find that
// starts a transaction), those it gave up on included.
func fenceReads(e *env) []command {
	var out []command
	for _, c := range e.mon.started("find") {
		if c.StartTxn {
			out = append(out, c)
		}
	}
	return out
}

// deliverCutFences delivers late every fence read that got no answer,
// and requires the server to refuse each.
func deliverCutFences(t *testing.T, e *env) {
	t.Helper()
	for _, c := range fenceReads(e) {
		if c.Succeeded || c.Refused {
			continue
		}
		reply := deliverLate(t, e.uri, c.Body)
		assert.Zero(t, reply.Lookup("ok").AsFloat64(), "a cut fence read (txn %d) delivered after Close starts a transaction: %v", c.TxnNumber, reply)
	}
}

// Close's own fence, the one it sends again for a session whose fence's
// read it cut, may itself be cut: by the database (a connection that
// breaks). That read may still reach the server after Close's last kill,
// exactly as the read Close fenced again for, and start a transaction
// there. Close reported nil: it must not, or it must fence again until a
// fence is answered.
func TestAttack27CloseWhoseOwnFenceReadBreaksLeavesNothingOpen(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The reaper's fence read is held: Close comes while it is in flight.
	reapWithFenceHeld(t, e)
	time.Sleep(100 * time.Millisecond) // and held by the database
	// Close's fence read breaks its connection.
	e.failCommand(t, 1, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := e.runner.Close(ctx)
	t.Logf("Close: %v", closeErr)
	require.GreaterOrEqual(t, len(fenceReads(e)), 2, "Close fences again: %s", e.mon.dump("find", "killSessions"))
	if closeErr != nil {
		return // Close said so: left to the lifetime limit, by its word
	}
	time.Sleep(2 * time.Second) // the held read is done
	deliverCutFences(t, e)
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "Close reported nil, and a transaction is open on the server: %s", e.mon.dump("find", "killSessions"))
	writeAfter(t, e)
}

// A session whose fence's read the database cut (a connection that
// broke) waits in the reaper's spare list for the runner's next
// transaction. With no next transaction (the service stops), Close ends
// it and reports nil: the first statement of its cut attempt, still on
// its way, then starts a transaction after Close and holds document 1
// until the lifetime limit. Close fences again a pending session whose
// read was cut; a spare one is the same session.
func TestAttack27CloseFencesAgainASpareSessionWhoseFenceReadBroke(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The first statement, then the reaper's fence read, break their
	// connection.
	e.failCommand(t, 2, bson.D{{Key: "failCommands", Value: bson.A{"update", "find"}}, {Key: "closeConnection", Value: true}})
	require.Error(t, e.runner.Run(ctxTimeout(t), holdAndFail(e, false)))
	updates := e.mon.started("update")
	require.Len(t, updates, 1)
	require.True(t, updates[0].StartTxn)
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range e.mon.named("killSessions") {
			if c.Succeeded {
				n++
			}
		}
		return n >= 2
	}, 30*time.Second, 10*time.Millisecond, "the reaper kills and fences the session: %s", e.mon.dump("killSessions", "find"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeErr := e.runner.Close(ctx)
	t.Logf("Close: %v", closeErr)
	reply := deliverLate(t, e.uri, updates[0].Body)
	if closeErr != nil {
		return
	}
	assert.Zero(t, reply.Lookup("ok").AsFloat64(), "the cut first statement delivered after Close starts the transaction and writes: %v", reply)
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "Close reported nil, and a transaction is open on the server")
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer wcancel()
	_, err := e.coll.UpdateOne(wctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
	assert.NoError(t, err, "Close reported nil, and the late statement's transaction holds document 1")
}

// Calls of Close run one at a time. Since 17c167d a Close whose kill
// gets no answer tries again until its ctx ends: a second Close, with a
// shorter ctx, waited for the whole of the first one's, far past its own.
func TestAttack27ACloseReturnsWithinItsCtxWhileAnotherCloseRetries(t *testing.T) {
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	reapWithFenceHeld(t, e)
	// Every kill breaks its connection.
	e.failCommand(t, -1, bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "closeConnection", Value: true}})

	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		first <- e.runner.Close(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.runner.Close(ctx)
	took := time.Since(start)
	assert.Error(t, err, "the second Close killed nothing")
	assert.Less(t, took, 1500*time.Millisecond, "the second Close (ctx 500 ms) waited for the first")
	assert.Error(t, <-first, "the first Close killed nothing")
	off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
	require.Eventually(t, func() bool {
		return e.client.Database("admin").RunCommand(context.Background(), off).Err() == nil
	}, 10*time.Second, 50*time.Millisecond)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, e.runner.Close(cctx))
	writeAfter(t, e)
}

// Without killSessions (no privilege, Atlas's shared tiers) the reaper's
// fence is what aborts the transaction left open: it sends
// abortTransaction for its own. Close's last attempt only tried the kill:
// refused, it reported the failure and left document 1 held to the
// lifetime limit, though a fence would have ended it.
func TestAttack27CloseWithoutKillSessionsFencesWithAnAbort(t *testing.T) {
	e := newEnv(t, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The runner's abort, the reaper's kill and Close's kill are held
	// 1 s, then refused (Unauthorized): the abort past the clean-up time,
	// the reaper's kill cut by Close.
	e.failCommand(t, 3, bson.D{
		{Key: "failCommands", Value: bson.A{"abortTransaction", "killSessions"}},
		{Key: "errorCode", Value: 13},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 1000},
	})
	require.ErrorIs(t, e.runner.Run(ctxTimeout(t), holdAndFail(e, false)), errBusiness)
	require.Eventually(t, func() bool { return len(e.mon.started("killSessions")) > 0 }, 10*time.Second, time.Millisecond, "the reaper's kill is sent")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.runner.Close(ctx), "Close's fence aborts what the kill could not: %s", e.mon.dump("find", "killSessions", "abortTransaction"))
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "a transaction left open on the server")
	writeAfter(t, e)
}

// Close's own fence refused by the server (an error answer, not a broken
// connection): the server started nothing for it, and the reaper's cut
// fence read, still on its way, then starts a transaction after Close.
// Close reported nil. It must say that something may be left open (a
// later Close fences again), whether the refusal lasts or not.
func TestAttack27CloseWhoseOwnFenceIsRefusedSaysSo(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	tests := []struct {
		name  string
		times int
		give  bson.D
	}{
		{name: "refused once", times: 1, give: failData("find", codeInternalError)},
		{name: "refused with a transient label", times: 1, give: failData("find", codeWriteConflict, "TransientTransactionError")},
		{name: "refused always (no privilege)", times: -1, give: failData("find", 13)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithMaxAttempts(1))
			seedDoc(t, e)
			reapWithFenceHeld(t, e)
			time.Sleep(100 * time.Millisecond)
			e.failCommand(t, tt.times, tt.give)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			closeErr := e.runner.Close(ctx)
			t.Logf("Close: %v", closeErr)
			turnOff(t, e)
			if closeErr != nil {
				// Said so: a later Close fences again.
				require.NoError(t, e.runner.Close(ctx))
			}
			time.Sleep(2 * time.Second) // the held read is done
			deliverCutFences(t, e)
			open, _ := serverStatus(t, e.client)
			assert.Zero(t, open, "Close reported nil, and a transaction is open on the server: %s", e.mon.dump("find", "killSessions"))
			writeAfter(t, e)
		})
	}
}
