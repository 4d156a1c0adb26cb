package mongotest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/txkit/txkit/mongotest"
)

// killSessions and killAllSessions do not attach their own lsid
// (kill_sessions_command.cpp, kill_all_sessions_command.cpp:
// attachLogicalSessionsToOpCtx() is false), and a command without
// txnNumber does not check its session out: two clients that run
// killAllSessions at once, each from its own session (every driver sends
// an lsid), both get ok. Finding mongotest-concurrent-kill-deadlock.
func TestConcurrentKillAllSessionsFromTheirOwnSessionsDoNotDeadlock(t *testing.T) {
	srv, err := mongotest.NewServer()
	require.NoError(t, err)
	client, err := mongo.Connect(srv.ClientOptions().SetMaxPoolSize(4))
	require.NoError(t, err)
	ctx := context.Background()
	admin := client.Database("admin")
	const killers = 2
	done := make(chan error, killers)
	for range killers {
		go func() {
			sess, err := client.StartSession()
			if err != nil {
				done <- err
				return
			}
			defer sess.EndSession(ctx)
			sctx := mongo.NewSessionContext(ctx, sess)
			for range 3000 {
				if err := admin.RunCommand(sctx, bson.D{{Key: "killAllSessions", Value: bson.A{}}}).Err(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	timeout := time.After(20 * time.Second)
	for range killers {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-timeout:
			// The server's handlers are stuck for good: leave them (and
			// the server) behind rather than hang in Close.
			t.Fatal("two concurrent killAllSessions deadlocked: neither was answered in 20s")
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, client.Disconnect(dctx))
	require.NoError(t, srv.Close())
}

// ViewGraph::insertAndValidate checks, with the cycle and the depth, the
// size of the resolved pipeline through the new view: the sum of the
// pipelines' BSON sizes from the furthest parent to the furthest child
// may not pass kMaxViewPipelineSizeBytes (16 * 1000 * 1000), else
// ViewPipelineMaxSizeExceeded (195) and no view is created
// (src/mongo/db/views/view_graph.cpp). Two 9 MB views stacked resolve to
// 18 MB; a single view whose two stages total just over 16,000,000 bytes
// is refused too.

// A command without txnNumber does not check its session out on MongoDB
// (service_entry_point_common: shouldCheckoutSession needs a txnNumber),
// so an index build sent on the session of a transaction that read the
// collection waits only until the transaction ends — at the latest when
// the transaction lifetime reaper aborts it (transactionLifetimeLimitSeconds).
// mongotest holds the session for the whole createIndexes while it waits
// for that transaction, and its reaper skips a session with a command
// running (TryLock), so the transaction is never reaped and the build
// waits until its maxTimeMS (or forever without one).
func TestIndexBuildOnTheSessionOfAReadingTransactionEndsAfterItsLifetime(t *testing.T) {
	srv := mongotest.Start(t)
	s, admin := newRandomSession(t, srv), newRandomSession(t, srv)
	requireOK(t, admin.run("admin", bson.D{{Key: "setParameter", Value: 1}, {Key: "transactionLifetimeLimitSeconds", Value: 1}}))
	requireOK(t, admin.run("db", insertCmd("c", bson.D{{Key: "_id", Value: 1}})))
	requireOK(t, s.run("db", txnCmd(bson.D{{Key: "find", Value: "c"}}, 1, true)))

	r := s.run("db", bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{
		bson.D{{Key: "key", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "name", Value: "x_1"}},
	}}, {Key: "maxTimeMS", Value: 8000}})
	requireOK(t, r)
	requireCode(t, s.run("admin", txnCmd(bson.D{{Key: "commitTransaction", Value: 1}}, 1, false)), 251, "NoSuchTransaction", "TransientTransactionError")
}

// killSessions: [] kills every session when access control is off
// (kill_sessions_command.cpp: an empty list takes patternsForLoggedInUser,
// which without auth is makeKillAllSessionsByPattern, all sessions; the
// manual: "Specify an empty array [ ] to kill all sessions"). So the open
// transaction of another session is aborted and its cursors are closed.
// mongotest reads the empty list as "no session" and kills nothing.
