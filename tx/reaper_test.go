package tx_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/txkit/txkit/internal/testenv"
	"github.com/txkit/txkit/tx"
)

// reapCleanup is the clean-up timeout of the reaper tests: an abort that
// the database holds up longer is given up and its session reaped.
const reapCleanup = 300 * time.Millisecond

// holdAndFail is a callback that writes document 1 (the transaction then
// holds it) and fails: with errBusiness, or with what read returns.
func holdAndFail(e *env, read bool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if _, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}}); err != nil {
			return err
		}
		if read {
			return e.coll.Distinct(ctx, "v", bson.D{}).Err()
		}
		return errBusiness
	}
}

// writeAfter writes document 1 outside any transaction, as another writer
// would, with a deadline far shorter than the server's transaction
// lifetime limit (60 s): it fails if the abandoned transaction still
// holds the document.
func writeAfter(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
	require.NoError(t, err, "the document is still held by the abandoned transaction")
	var got struct{ V string }
	require.NoError(t, e.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&got))
	assert.Equal(t, "next", got.V)
}

func seedDoc(t *testing.T, e *env) {
	t.Helper()
	_, err := e.coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "seed"}})
	require.NoError(t, err)
}

func TestATransactionWhoseAbortFailedIsKilledOnceTheDatabaseAnswers(t *testing.T) {
	tests := []struct {
		name string
		give bson.D // the failCommand data
		read bool   // the callback fails on a read (else with a business error)
	}{
		{
			name: "the database holds up abortTransaction past the clean-up time",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"abortTransaction"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 5000},
			},
		},
		{
			name: "the connection closes under the transaction and its abort",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"distinct", "abortTransaction"}},
				{Key: "closeConnection", Value: true},
			},
			read: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
			seedDoc(t, e)
			e.failCommand(t, -1, tt.give)

			err := e.runner.Run(ctxTimeout(t), holdAndFail(e, tt.read))
			require.Error(t, err)
			writeAfter(t, e)
		})
	}
}

// A session the reaper has not killed yet must not be reused: the kill
// would abort the innocent transaction that reused it.
func TestASessionWaitingToBeKilledIsNotReused(t *testing.T) {
	e := newEnv(t, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The commit is answered MaxTimeMSExpired: its outcome is unknown, the
	// transaction stays open on the server, and the driver, which got an
	// answer, would pool the session. The reaper's kills fail until the
	// fail point is turned off.
	e.failCommand(t, -1, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction", "killSessions"}},
		{Key: "errorCode", Value: codeMaxTimeMSExpired},
	})
	err := e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		_, err := e.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "abandoned"}}}})
		return err
	})
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	commits := e.mon.named("commitTransaction")
	require.NotEmpty(t, commits)
	abandoned := commits[0].LSID
	before := len(e.mon.named("insert"))

	err = e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
		if _, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "innocent"}}); err != nil {
			return err
		}
		off := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}
		//txcheck:ignore the fail point is the test's, not the transaction's
		require.NoError(t, e.client.Database("admin").RunCommand(context.Background(), off).Err())
		// Commit only once the reaper's kill went through.
		require.Eventually(t, func() bool {
			return slices.ContainsFunc(e.mon.named("killSessions"), func(c command) bool { return c.Succeeded })
		}, 10*time.Second, 10*time.Millisecond)
		return nil
	})
	require.NoError(t, err, "the kill hit a transaction that reused the session")
	writeAfter(t, e)
	assert.Equal(t, int64(1), e.count(t, bson.D{{Key: "_id", Value: "innocent"}}))
	for _, c := range e.mon.named("insert")[before:] {
		assert.NotEqual(t, abandoned, c.LSID, "the innocent transaction ran on the session waiting to be killed")
	}
}

func TestCloseKillsWhatIsLeftOpenAndStopsTheReaper(t *testing.T) {
	e := newEnv(t, tx.WithCleanupTimeout(reapCleanup), tx.WithMaxAttempts(1))
	seedDoc(t, e)
	e.failCommand(t, -1, bson.D{
		{Key: "failCommands", Value: bson.A{"abortTransaction"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 5000},
	})
	require.ErrorIs(t, e.runner.Run(ctxTimeout(t), holdAndFail(e, false)), errBusiness)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.runner.Close(ctx))
	writeAfter(t, e)
	assert.Zero(t, e.client.NumberSessionsInProgress(), "the killed session is ended")
}

// A transaction's first statement whose reply the caller did not await
// (its ctx ended, or the connection broke) may reach the server late: a
// loaded server reads it after the runner's abort, which the server then
// answered NoSuchTransaction, and after the reaper's kill. It then starts
// the transaction and holds what it writes. The driver discards such a
// session (the network error made it dirty), so nothing would end that
// transaction before the server's lifetime limit but a later transaction
// number on the session. The reaper's fence is one; when the fence could
// not run (here its read fails), the runner's next transaction on the
// session supersedes the late one. The test delivers the statement late
// itself, on a connection of its own, once the kill is done.
func TestAFirstStatementThatReachesTheServerAfterTheAbortIsSuperseded(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	tests := []struct {
		name string
		give bson.D // the failCommand data for the first statement
		// cancel: the caller's ctx ends during the statement, and the
		// callback returns ctx's error instead of the driver's.
		cancel bool
	}{
		{
			name: "the connection breaks under the first statement",
			give: bson.D{{Key: "failCommands", Value: bson.A{"update", "find"}}, {Key: "closeConnection", Value: true}},
		},
		{
			name: "the caller gives up during the first statement",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"update", "find"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 500},
				{Key: "errorCode", Value: codeWriteConflict}, // the statement itself never runs
			},
			cancel: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithMaxAttempts(1))
			seedDoc(t, e)
			// The first statement, then the fence's read (the callback
			// reads nothing).
			e.failCommand(t, 2, tt.give)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				stop := time.AfterFunc(100*time.Millisecond, cancel)
				defer stop.Stop()
			}
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				if err := holdAndFail(e, false)(ctx); err != errBusiness && tt.cancel {
					return ctx.Err()
				} else if err != nil {
					return err
				}
				return nil
			})
			require.Error(t, err)
			updates := e.mon.started("update")
			require.Len(t, updates, 1)
			require.True(t, updates[0].StartTxn)
			require.Eventually(t, func() bool {
				return slices.ContainsFunc(e.mon.named("killSessions"), func(c command) bool { return c.Succeeded })
			}, 10*time.Second, 10*time.Millisecond, "the reaper kills the session of the cut statement")
			// The fence's read failed, and the kill that follows a fence
			// is done: the session waits in the reaper for the next
			// transaction.
			require.Eventually(t, func() bool {
				n := 0
				for _, c := range e.mon.named("killSessions") {
					if c.Succeeded {
						n++
					}
				}
				return n >= 2
			}, 10*time.Second, 10*time.Millisecond, "the reaper fences the session")

			reply := deliverLate(t, e.uri, updates[0].Body)
			require.EqualValues(t, 1, reply.Lookup("n").AsInt64(), "the late statement started the transaction and wrote: %v", reply)
			open, _ := serverStatus(t, e.client)
			require.EqualValues(t, 1, open)

			require.NoError(t, e.runner.Run(ctxTimeout(t), func(ctx context.Context) error {
				_, err := e.coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "next"}})
				return err
			}))
			writeAfter(t, e)
			assert.Equal(t, int64(1), e.count(t, bson.D{{Key: "_id", Value: "next"}}))
			open, _ = serverStatus(t, e.client)
			assert.Zero(t, open, "the late statement's transaction is still open")
		})
	}
}

// deliverLate sends cmd (a command as the driver sent it: lsid,
// txnNumber, $db and all) on a connection of its own, as the server reads
// a message that waited on its connection, and returns the reply.
func deliverLate(t *testing.T, uri string, cmd bson.Raw) bson.Raw {
	t.Helper()
	u, err := url.Parse(uri)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	// OP_MSG: header (length, requestID, responseTo, opCode 2013), flag
	// bits, one section of kind 0.
	msg := make([]byte, 16, 21+len(cmd))
	binary.LittleEndian.PutUint32(msg[4:], 1)
	binary.LittleEndian.PutUint32(msg[12:], 2013)
	msg = append(msg, 0, 0, 0, 0, 0)
	msg = append(msg, cmd...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	_, err = conn.Write(msg)
	require.NoError(t, err)
	var head [16]byte
	_, err = io.ReadFull(conn, head[:])
	require.NoError(t, err)
	body := make([]byte, binary.LittleEndian.Uint32(head[:])-16)
	_, err = io.ReadFull(conn, body)
	require.NoError(t, err)
	require.Greater(t, len(body), 5)
	return bson.Raw(body[5:]) // after the flag bits and the section kind
}

// The same late first statement, with no transaction of the runner after
// it (the service only writes outside transactions from then on, or
// stops starting them): nothing supersedes it on its session, yet it must
// not hold the document until the server's transaction lifetime limit. A
// plain write of the document, bounded far below that limit, succeeds,
// and the server has no transaction open.
func TestAFirstStatementThatReachesTheServerAfterTheAbortHoldsNothingWithoutANextTransaction(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	tests := []struct {
		name   string
		give   bson.D // the failCommand data for the first statement
		cancel bool   // the caller's ctx ends during the statement
	}{
		{
			name: "the connection breaks under the first statement",
			give: bson.D{{Key: "failCommands", Value: bson.A{"update"}}, {Key: "closeConnection", Value: true}},
		},
		{
			name: "the caller gives up during the first statement",
			give: bson.D{
				{Key: "failCommands", Value: bson.A{"update"}},
				{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 500},
				{Key: "errorCode", Value: codeWriteConflict}, // the statement itself never runs
			},
			cancel: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tx.WithMaxAttempts(1))
			seedDoc(t, e)
			e.failCommand(t, 1, tt.give)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				stop := time.AfterFunc(100*time.Millisecond, cancel)
				defer stop.Stop()
			}
			err := e.runner.Run(ctx, func(ctx context.Context) error {
				if err := holdAndFail(e, false)(ctx); err != errBusiness && tt.cancel {
					return ctx.Err()
				} else if err != nil {
					return err
				}
				return nil
			})
			require.Error(t, err)
			updates := e.mon.started("update")
			require.Len(t, updates, 1)
			require.True(t, updates[0].StartTxn)
			require.Eventually(t, func() bool {
				return slices.ContainsFunc(e.mon.named("killSessions"), func(c command) bool { return c.Succeeded })
			}, 10*time.Second, 10*time.Millisecond, "the reaper kills the session of the cut statement")

			// The statement reaches the server now, after the kill.
			reply := deliverLate(t, e.uri, updates[0].Body)
			t.Logf("the late statement got %v", reply)

			wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer wcancel()
			_, err = e.coll.UpdateOne(wctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "next"}}}})
			require.NoError(t, err, "the late statement's transaction holds the document")
			var got struct{ V string }
			require.NoError(t, e.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: 1}}).Decode(&got))
			assert.Equal(t, "next", got.V)
			// The fence's own transaction, if the late statement came
			// first, ends with the fence.
			assert.Eventually(t, func() bool {
				open, _ := serverStatus(t, e.client)
				return open == 0
			}, 2*time.Second, 10*time.Millisecond, "a transaction is still open on the server")
		})
	}
}

// A fence that the database holds up does not hold up Close: Close stops
// it, and the goroutines end (goleak, in TestMain).
func TestAFenceHeldByTheDatabaseDoesNotHoldUpClose(t *testing.T) {
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The first statement, then the fence's read, are held 10 s.
	e.failCommand(t, 2, bson.D{
		{Key: "failCommands", Value: bson.A{"update", "find"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 10000},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.Error(t, e.runner.Run(ctx, holdAndFail(e, false)))
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(e.mon.started("find"), func(c command) bool { return c.StartTxn })
	}, 10*time.Second, 10*time.Millisecond, "the fence's read is sent")

	start := time.Now()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, e.runner.Close(cctx))
	assert.Less(t, time.Since(start), 2*time.Second, "Close waited for the fence")
	writeAfter(t, e)
}

// A fence whose read Close cut (the database held it) may still reach
// the server after Close, as any cut statement may: its transaction must
// not stay open to the lifetime limit. Close fences such a session again,
// with a higher transaction number, so that the late read is refused.
// The test delivers the cut read late itself, once Close returned (flake
// of TestAbortWhenContextIsCancelled in a full -race run: Close came while
// the reaper's fence was in flight, and one transaction was left open).
func TestAFenceReadCutByCloseLeavesNothingOpen(t *testing.T) {
	if testenv.Real() {
		t.Skip("delivers a statement on a raw connection")
	}
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The fence's read is held 2 s: Close comes while it is in flight
	// (and its kill interrupts it on the server).
	reapWithFenceHeld(t, e)
	time.Sleep(100 * time.Millisecond) // and held by the database

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, e.runner.Close(cctx))
	deliverCutFences(t, e)
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "a transaction left open on the server")
	writeAfter(t, e)
}

// Close's kill that meets a broken connection or a cleared pool (the
// database answered nothing) is tried again within Close's ctx: one
// dropped connection at shutdown must not leave what the reaper holds to
// the lifetime limit (flake of TestACommitThatFoundNoServerLeavesNothingOpen
// under load: "kill sessions left open: connection pool ... was cleared").
func TestCloseKillsAgainAfterABrokenConnection(t *testing.T) {
	e := newEnv(t, tx.WithMaxAttempts(1))
	seedDoc(t, e)
	// The fence's read is held: Close finds the session still pending.
	reapWithFenceHeld(t, e)
	// Close's first kill meets a closed connection.
	e.failCommand(t, 1, bson.D{{Key: "failCommands", Value: bson.A{"killSessions"}}, {Key: "closeConnection", Value: true}})

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, e.runner.Close(cctx))
	open, _ := serverStatus(t, e.client)
	assert.Zero(t, open, "a transaction left open on the server")
	writeAfter(t, e)
}

// waitFenceSent waits until the reaper sent a fence's read.
func waitFenceSent(t *testing.T, e *env) {
	t.Helper()
	require.Eventually(t, func() bool { return len(fenceReads(e)) > 0 }, 10*time.Second, time.Millisecond, "the fence's read is sent")
}

// reapWithFenceHeld reaps a cut transaction (reapCut) while the database
// holds the reaper's fence read 2 s, and returns once that read is sent:
// a Close then comes while it is in flight.
func reapWithFenceHeld(t *testing.T, e *env) {
	t.Helper()
	e.failCommand(t, 1, bson.D{
		{Key: "failCommands", Value: bson.A{"find"}},
		{Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 2000},
	})
	reapCut(t, e)
	waitFenceSent(t, e)
}
