package mongotest

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// A command waiting to check its session out is attached to it, so the
// session does not expire under it (the reaper's endIdle skips a session
// with a command attached), and the command runs on it once it is free. (A
// session that expired before the command attached is replaced: see
// [sessions.attach].)
func TestACommandWaitingForItsSessionKeepsItFromExpiring(t *testing.T) {
	s, nc := startServer(t, nil)
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}
	insert := func(nc net.Conn, reqID int32, id int) {
		reply := roundTrip(t, nc, reqID, bson.D{{Key: "insert", Value: "c"},
			{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}},
			{Key: "lsid", Value: lsid}, {Key: "txnNumber", Value: int64(id)}, {Key: "$db", Value: "db"}})
		require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	}
	insert(nc, 1, 1)
	ss := s.core.sessions
	old, err := ss.get(lsid)
	require.NoError(t, err)

	// The session is busy; a second command looks it up and waits for it.
	old.mu.Lock()
	other, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	require.NoError(t, other.SetDeadline(time.Now().Add(10*time.Second)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		insert(other, 2, 2)
	}()
	require.Eventually(t, func() bool {
		old.opMu.Lock()
		defer old.opMu.Unlock()
		return len(old.ops) == 1
	}, 5*time.Second, time.Millisecond, "the command attaches before it waits")
	assert.False(t, old.endIdle(time.Now().Add(time.Hour), time.Minute), "a session a command waits for does not expire")
	old.mu.Unlock()
	<-done

	require.Equal(t, 1, ss.count())
	now, err := ss.get(lsid)
	require.NoError(t, err)
	require.Same(t, old, now)
	now.mu.Lock()
	defer now.mu.Unlock()
	require.EqualValues(t, 2, now.txnNumber, "the retryable write is recorded on the session")
}

// A retryable write remembers each statement's outcome, listed while few,
// mapped beyond: both ways a retry finds exactly the statements that ran.
func TestRetryRecordRemembersEachStatement(t *testing.T) {
	for _, n := range []int{1, maxListedStmts, 4 * maxListedStmts} {
		r := &retryRecord{}
		for i := n - 1; i >= 0; i -= 2 { // out of order, every other one
			r.record(i, i*10)
		}
		for i := range n {
			got, ok := r.done(i)
			ran := (n-1-i)%2 == 0
			require.Equal(t, ran, ok, "n=%d stmt %d", n, i)
			if ran {
				require.Equal(t, i*10, got, "n=%d stmt %d", n, i)
			}
		}
		r.record(n-1, "again")
		got, _ := r.done(n - 1)
		require.Equal(t, "again", got)
	}
	var none *retryRecord
	_, ok := none.done(0)
	require.False(t, ok)
}

// endSessions closes nothing at once: MongoDB's session cache only records
// the ids (LogicalSessionCacheImpl::endSessions) and kills the ended
// sessions' cursors at its next refresh, logicalSessionRefreshMillis (5
// minutes) later. A getMore in between still reads the cursor; after the
// refresh it is CursorNotFound (43).
func TestEndSessionsClosesTheCursorsAtTheNextRefresh(t *testing.T) {
	s, nc := startServer(t, nil)
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("ending-session-1")}}}
	run := func(reqID int32, cmd bson.D) bsoncore.Document {
		return roundTrip(t, nc, reqID, append(cmd, bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "$db", Value: "db"}))
	}
	reply := run(1, bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{
		bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "_id", Value: 3}},
	}}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	reply = run(2, bson.D{{Key: "find", Value: "c"}, {Key: "batchSize", Value: 1}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	id := reply.Lookup("cursor", "id").Int64()
	getMore := bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: "c"}, {Key: "batchSize", Value: 1}}

	reply = run(3, bson.D{{Key: "endSessions", Value: bson.A{lsid}}})
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), reply.String())
	reply = run(4, getMore)
	require.EqualValues(t, 1, reply.Lookup("ok").AsInt64(), "the cursor was closed before the refresh: %s", reply.String())

	s.core.housekeep(time.Now().Add(logicalSessionRefresh))
	reply = run(5, getMore)
	require.EqualValues(t, 0, reply.Lookup("ok").AsInt64(), reply.String())
	require.EqualValues(t, 43, reply.Lookup("code").AsInt64(), reply.String())
}
